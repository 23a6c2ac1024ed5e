"""moto's EC2 models, imported without reading the same data again at every server start.

Importing moto's EC2 models is most of a sandbox server's start, and so of a restart:
- `availability_zones_and_regions` lists three partitions' regions, each through a new boto3
  Session that loads botocore's endpoint data again (about a second of CPU on a loaded
  machine). Here they go to the one session moto keeps for the same purpose
  (`AccountSpecificBackend.get_session`), so the data is loaded once;
- `instance_types` and `amis` decompress and parse moto's resource files (the instance types,
  every region's offerings: 92 files).
With a cache file (the server's state directory), the regions and the resources a cold import
asked for are written there, and the next import answers the same questions from it without
botocore's endpoint data or moto's files: the same answers, to the same questions, from the
same moto, botocore and Python (the file says which; another one is not used). Each resource
is kept as its own pickle, so every import gets objects of its own, as moto's loader gives.
The file is written by the sandbox server into its own state directory and read only from there,
as the snapshot is.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import sys
from pathlib import Path
from typing import Any

MODULE = "moto.ec2.models"
IMPORT_CACHE = "moto-import.pickle"  # in the server's state directory
CACHE_FORMAT = 1


def _versions() -> dict[str, object]:
    import botocore
    import moto

    return {
        "format": CACHE_FORMAT,
        "moto": str(moto.__version__),
        "botocore": str(botocore.__version__),
        "python": list(sys.version_info[:3]),
    }


def _read(cache: Path | None) -> dict[str, Any]:
    if cache is None:
        return {}
    try:
        with cache.open("rb") as handle:
            data = pickle.load(handle)
    except Exception:  # missing, cut short, of another format: a cold import
        return {}
    if not isinstance(data, dict) or data.get("versions") != _versions():
        return {}
    return data


def _write(cache: Path, regions: dict[Any, Any], resources: dict[str, bytes]) -> None:
    temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    data = {"versions": _versions(), "regions": regions, "resources": resources}
    with contextlib.suppress(OSError):  # a cache: the next start imports cold again
        temporary.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        temporary.replace(cache)
    temporary.unlink(missing_ok=True)


class _Regions:
    """What moto's EC2 module asks a new boto3 Session for at import, answered from the cache
    or else by moto's own session."""

    def __init__(self, known: dict[Any, Any], session: Any) -> None:
        self.known = known
        self.session = session
        self.missed = False

    def get_available_regions(self, service: str, partition_name: str = "aws") -> list[str]:
        key = (service, partition_name)
        if key not in self.known:
            self.known[key] = list(self.session.get_available_regions(service, partition_name))
            self.missed = True
        return list(self.known[key])


def import_moto_ec2(cache: Path | None = None) -> None:
    """Imports moto's EC2 models (a no-op once they are); `cache`: the file to answer from and
    to write after a cold import."""
    if MODULE in sys.modules:
        return
    import boto3
    import moto.utilities.utils as moto_utils
    from moto.core.base_backend import AccountSpecificBackend

    data = _read(cache)
    regions = _Regions(dict(data.get("regions") or {}), AccountSpecificBackend.get_session())
    resources: dict[str, bytes] = dict(data.get("resources") or {})
    loaded = len(resources)
    session_class, load_resource = boto3.Session, moto_utils.load_resource

    def session(*args: Any, **kwargs: Any) -> Any:
        return regions if not args and not kwargs else session_class(*args, **kwargs)

    def resource(name: str) -> Any:
        if name not in resources:
            resources[name] = pickle.dumps(load_resource(name), protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.loads(resources[name])

    before = set(sys.modules)
    boto3.Session = session  # type: ignore[misc]  # only while the modules are imported
    moto_utils.load_resource = resource
    try:
        importlib.import_module(MODULE)
    finally:
        boto3.Session = session_class  # type: ignore[misc]
        moto_utils.load_resource = load_resource
        # What the modules call later (at run time) is moto's own again.
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            if getattr(module, "Session", None) is session:
                module.Session = session_class
            if getattr(module, "load_resource", None) is resource:
                module.load_resource = load_resource
    if cache is not None and (regions.missed or len(resources) != loaded):
        _write(cache, regions.known, resources)
