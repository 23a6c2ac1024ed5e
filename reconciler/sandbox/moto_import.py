"""moto's EC2 models, imported without loading botocore's endpoint data three times.

moto's EC2 module lists the regions of three partitions when it is imported, each through a
new boto3 Session, and each new session loads botocore's endpoint data again: about a second
of CPU, a third of what a sandbox server spends starting (twice that on a loaded machine),
paid by every start and restart. Here those three questions go to the one session moto keeps
for the same purpose (`AccountSpecificBackend.get_session`, which moto asks again when it
creates backends), so the data is loaded once. The answers are the same: the same botocore
data, asked the same questions.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

MODULE = "moto.ec2.models.availability_zones_and_regions"


def import_moto_ec2() -> None:
    """Imports moto's EC2 models (a no-op once they are)."""
    if MODULE in sys.modules:
        return
    import boto3
    from moto.core.base_backend import AccountSpecificBackend

    shared = AccountSpecificBackend.get_session()
    original = boto3.Session

    def session(*args: Any, **kwargs: Any) -> Any:
        return shared if not args and not kwargs else original(*args, **kwargs)

    boto3.Session = session  # type: ignore[misc]  # only while the module is imported
    try:
        module = importlib.import_module(MODULE)
    finally:
        boto3.Session = original  # type: ignore[misc]
    module.Session = original  # what the module calls later gets a session of its own again
    importlib.import_module("moto.ec2.models")
