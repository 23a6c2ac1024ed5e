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
The instance type offerings (150,000 entries, three location types in 30 regions, of which a
sandbox uses one or two) are unpickled only for a region asked for, at its first use
(`_Offerings`); unpickling them all was a fifth of a warm import.
The file is written by the sandbox server into its own state directory and read only from there,
as the snapshot is.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

MODULE = "moto.ec2.models"
TYPES_MODULE = "moto.ec2.models.instance_types"
OFFERINGS = "ec2/resources/instance_type_offerings/"  # then {location type}/{region}.json[.gz]
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


class _Offerings(dict[str, Any]):
    """One location type's instance type offerings by region, as moto's `instance_types`
    module has them, but a cached region's list is unpickled at its first use. moto asks for a
    region's with `[region]` and `.get(region, [])`; whatever reads the values gets them all."""

    def __init__(self, location_type: str, loaded: dict[str, Any], cached: dict[str, bytes]):
        super().__init__({**loaded, **dict.fromkeys(cached)})
        self._location_type = location_type
        self._cached = cached
        self._lock = threading.Lock()

    def __getitem__(self, region: str) -> Any:
        offerings = dict.__getitem__(self, region)
        if offerings is None:
            with self._lock:
                offerings = dict.__getitem__(self, region)
                if offerings is None:
                    offerings = pickle.loads(self._cached[region])
                    for offering in offerings:  # what moto's module does with each one it loads
                        offering["LocationType"] = self._location_type
                    dict.__setitem__(self, region, offerings)
        return offerings

    def get(self, region: str, default: Any = None) -> Any:
        try:
            return self[region]
        except KeyError:
            return default

    def values(self) -> Any:
        return [self[region] for region in self]

    def items(self) -> Any:
        return [(region, self[region]) for region in self]


def _lazy_offerings(deferred: dict[str, bytes]) -> None:
    """Puts the offerings whose loading was deferred in place, behind `_Offerings`."""
    offerings = sys.modules[TYPES_MODULE].INSTANCE_TYPE_OFFERINGS
    for location_type in list(offerings):
        prefix = f"{OFFERINGS}{location_type}/"
        cached = {
            name[len(prefix) :].split(".")[0]: pickled
            for name, pickled in deferred.items()
            if name.startswith(prefix)
        }
        if cached:
            loaded = {r: v for r, v in offerings[location_type].items() if r not in cached}
            offerings[location_type] = _Offerings(location_type, loaded, cached)


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
    deferred: dict[str, bytes] = {}  # cached offerings, loaded when asked for
    session_class, load_resource = boto3.Session, moto_utils.load_resource

    def session(*args: Any, **kwargs: Any) -> Any:
        return regions if not args and not kwargs else session_class(*args, **kwargs)

    def resource(name: str) -> Any:
        if name not in resources:
            resources[name] = pickle.dumps(load_resource(name), protocol=pickle.HIGHEST_PROTOCOL)
        elif name.startswith(OFFERINGS):
            deferred[name] = resources[name]
            return []  # for now: `_lazy_offerings` puts them in place
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
    if deferred:
        _lazy_offerings(deferred)
    if cache is not None and (regions.missed or len(resources) != loaded):
        _write(cache, regions.known, resources)
