"""botocore's service models without their documentation, for a process that lives long.

A client holds its service's whole model, as JSON-decoded dictionaries, for as long as the
process lives: EC2's is about 14 MiB, and about 70 % of it is the API reference's HTML
(`documentation` on every operation, shape and member), which botocore reads only to write
docstrings. The operator (issue #9: at most 150 MB with 1,000 objects) loads the models
without it: EC2's takes 4 MiB. The CLI keeps botocore's default: it lives seconds, and the
walk would cost it startup time. `reconciler/aws/api_docs.py` reads the data files itself and
is unaffected.
"""

from __future__ import annotations

import os
from typing import Any

UNREAD = frozenset({"documentation", "documentationUrl"})  # only docstrings and help read them
# Kept whole: botocore indexes the documentation of a client context parameter (S3's among
# others: `ServiceModel.client_context_parameters`), and a KeyError there fails every call.
KEPT = frozenset({"clientContextParams"})


def without_docs(data: Any, names: bool = False) -> Any:
    """`data` without the keys botocore reads only for documentation, at any depth. The keys
    of a `members` map are names a service chose (launch-wizard has a `documentationUrl`
    member): `names` keeps them all, and only what they map to is stripped."""
    if isinstance(data, dict):
        return {
            k: v if k in KEPT else without_docs(v, k == "members" and not names)
            for k, v in data.items()
            if names or k not in UNREAD
        }
    if isinstance(data, list):
        return [without_docs(v) for v in data]
    return data


def lean_models(botocore_session: Any) -> None:
    """Makes the session load every service model (`service-2`) without its documentation.
    Call it before the session's first client: models already loaded stay as they are."""
    from botocore.loaders import JSONFileLoader

    class Undocumented(JSONFileLoader):  # type: ignore[misc]
        def load_file(self, file_path: str) -> Any:
            data = super().load_file(file_path)
            if data is not None and os.path.basename(file_path) == "service-2":
                return without_docs(data)
            return data

    botocore_session.get_component("data_loader").file_loader = Undocumented()
