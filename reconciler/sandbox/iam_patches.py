"""IAM on the sandbox: its backends made only where they are used, AWS's policies parsed once.

- moto finds the account of every request by looking its access key up in the IAM backend of
  every partition of every account it knows (`moto.iam.models.get_account_id_from`), creating
  those backends on the way: six per account (aws, aws-cn, aws-us-gov, ...), each built with
  AWS's 1,582 managed policies. The first request after a start or a reset paid for all six
  (seconds of CPU on a loaded machine), every reset rebuilt them, and a snapshot of the server
  carried them all. A backend that does not exist holds no access key, so the lookup here asks
  only the ones that exist: the same answer, without five partitions nobody uses. Not for a
  recording made before the per-request streams (`request_streams`), though: its IDs came
  from moto's shared generator after those five backends had drawn theirs, so its replay
  builds them as moto did.
- Each IAM backend parses moto's 4.7 MB of managed policies, and serialises every policy
  document again; the parsed policies are kept here (they are immutable: names, strings,
  datetimes) and each backend gets new policy objects made from them, as moto makes them.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam import models as iam_models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, IAMBackend
from moto.settings import load_iam_aws_managed_policies
from moto.utilities.utils import PARTITION_NAMES

from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.request_streams import RequestStreams


class IamPatches:
    _init_aws_policies: Any  # moto's originals, set by install()
    _get_account_id_from: Any

    def __init__(self, streams: RequestStreams) -> None:
        self.streams = streams
        self._policies: list[tuple[str, dict[str, Any]]] | None = None
        self._parsing = threading.Lock()

    def install(self, patcher: Patcher) -> None:
        self._get_account_id_from = patcher.replace_function(
            iam_models, "get_account_id_from", self.account_of
        )
        self._init_aws_policies = patcher.replace(
            IAMBackend, "_init_aws_policies", self.aws_policies
        )

    def account_of(self, access_key: str) -> str:
        """moto's lookup, over the IAM backends that exist only."""
        if self.streams.seed is None:  # a recording of moto's shared generator, or no seed yet
            return str(self._get_account_id_from(access_key))
        for account_id, account in list(iam_models.iam_backends.items()):
            for partition in PARTITION_NAMES:
                backend = dict.get(account, partition)  # not account[...]: that creates it
                if backend is not None and access_key in backend.access_keys:
                    return str(account_id)
        return DEFAULT_ACCOUNT_ID

    def aws_policies(self, backend: IAMBackend) -> list[Any]:
        """What moto's `_init_aws_policies` returns, from policies parsed once."""
        if not load_iam_aws_managed_policies():
            return []
        with self._parsing:
            if self._policies is None:
                self._policies = [
                    (name, _arguments(data))
                    for name, data in json.loads(aws_managed_policies_data).items()
                ]
        return [
            AWSManagedPolicy(
                name, account_id=backend.account_id, region=backend.region_name, **arguments
            )
            for name, arguments in self._policies
        ]


def _arguments(data: dict[str, Any]) -> dict[str, Any]:
    """`AWSManagedPolicy.from_data`'s arguments, but the account and region."""
    return {
        "default_version_id": data.get("DefaultVersionId"),
        "path": data.get("Path"),
        "document": json.dumps(data.get("Document")),
        "create_date": datetime.fromisoformat(data["CreateDate"]),
        "update_date": datetime.fromisoformat(data["UpdateDate"]),
    }
