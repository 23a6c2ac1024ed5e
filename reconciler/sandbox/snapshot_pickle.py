"""How the sandbox's snapshot (`snapshot`) pickles moto's state, and puts it back.

moto's backends are plain objects, with exceptions handled here: locks, conditions and queues
are pickled as new ones; threads, processes and generators as None (the new server has none of
the old one's; the generators are the Resource Groups Tagging API's pagination pages, whose
tokens expire with a restore, `forget_pages`); a model that is also a thread (moto's Batch
`Job`) as the model; defaultdicts with a lambda, or of a subclass with its own `__init__`
(moto's SSM), and weak dictionaries, by their items; and what the new process already has
by name, not by value (`persistent_id`): moto's BackendDicts and their per-account dicts,
backends that only wrap another (`WRAPPERS`), its seeded generator, and the sandbox's
extensions.
"""

from __future__ import annotations

import functools
import importlib
import io
import pickle
import queue
import subprocess
import sys
import threading
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable
from types import GeneratorType, MappingProxyType
from typing import Any

# moto's backends that keep nothing of their own (they pass every call on to another one's
# state, which their own pickling would not survive): the new process's own stand in.
WRAPPERS = frozenset({"BatchSimpleBackend"})


def _nothing() -> None:
    """What a thread or a process becomes in a snapshot: the new server has neither."""
    return None


def _model_thread(kind: type[threading.Thread]) -> threading.Thread:
    """A moto model that is a thread, as a new thread (never started); its state follows."""
    made = kind.__new__(kind)
    threading.Thread.__init__(made, daemon=True)
    return made


_THREAD_ATTRS = frozenset(vars(threading.Thread()))
# What a lock, a condition, an event or a queue becomes: a new one (the new server has its own
# threads, and nothing holds them at a stop).
_FRESH = MappingProxyType(
    {
        type(threading.Lock()): threading.Lock,
        type(threading.RLock()): threading.RLock,
        threading.Condition: threading.Condition,
        threading.Event: threading.Event,
        threading.local: threading.local,
        queue.Queue: queue.Queue,
    }
)
_GONE = (threading.Thread, subprocess.Popen, GeneratorType)


class Pickler(pickle.Pickler):
    """Pickles moto's objects; live objects of the process (moto's registries, the extensions)
    by name, locks as new ones, threads and processes as None."""

    def __init__(self, file: io.BufferedIOBase, live: dict[int, tuple[str, ...]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._live = live

    def persistent_id(self, obj: Any) -> tuple[str, ...] | None:
        return self._live.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _FRESH:
            return (_FRESH[kind], ())
        if isinstance(obj, threading.Thread) and kind.__module__.startswith("moto."):
            # A model that is also a thread (moto's Batch Job): the model, not the thread.
            state = {k: v for k, v in vars(obj).items() if k not in _THREAD_ATTRS}
            return (_model_thread, (kind,), state)
        if isinstance(obj, _GONE) or kind.__name__ == "LocalProcess":
            return (_nothing, ())
        if kind in (weakref.WeakValueDictionary, weakref.WeakKeyDictionary):
            # Its entries: their objects are in the pickle too (else they would be gone).
            return (kind, (), None, None, iter(list(obj.items())))
        if isinstance(obj, defaultdict) and (kind is not defaultdict or _is_lambda(obj)):
            # A lambda as its factory, or a subclass whose __init__ takes other arguments
            # (moto's SSM ParameterDict): made empty, then given its attributes and items.
            factory = _stand_in(obj.default_factory) if _is_lambda(obj) else obj.default_factory
            if factory is not None or obj.default_factory is None:  # else no snapshot
                state = getattr(obj, "__dict__", None) or None
                return (_defaultdict, (kind, factory), state, None, iter(obj.items()))
        return NotImplemented


def _is_lambda(found: defaultdict[Any, Any]) -> bool:
    return getattr(found.default_factory, "__name__", "") == "<lambda>"


def _defaultdict(kind: type[defaultdict[Any, Any]], factory: Any) -> defaultdict[Any, Any]:
    made = kind.__new__(kind)
    defaultdict.__init__(made, factory)
    return made


def _stand_in(factory: Callable[[], Any]) -> Callable[[], Any] | None:
    """What can be pickled in place of a defaultdict's lambda (moto's SSM tags:
    `defaultdict(lambda: defaultdict(dict))`): a plain container type, or a defaultdict of
    one, as the lambda makes; None for anything else."""
    made = factory()
    plain = (dict, list, set)
    if type(made) in plain:
        return type(made)
    if type(made) is defaultdict and made.default_factory in plain:
        return functools.partial(defaultdict, made.default_factory)
    return None


class Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, live: dict[tuple[str, ...], Any]) -> None:
        super().__init__(file)
        self._live = live

    def persistent_load(self, pid: Any) -> Any:
        key = tuple(pid)
        if key in self._live:
            return self._live[key]
        if key[0] in ("backends", "account", "region"):  # moto's: the new process's own
            backends = getattr(importlib.import_module(key[1]), key[2])
            if key[0] == "backends":
                return backends
            return backends[key[3]] if key[0] == "account" else backends[key[3]][key[4]]
        raise pickle.UnpicklingError(f"unknown live object {key!r}")


def registries() -> dict[tuple[str, str], Any]:
    """moto's BackendDicts in use, by (module, attribute) that names them."""
    from moto.core.base_backend import BackendDict

    found: dict[tuple[str, str], Any] = {}
    for backends in list(BackendDict._instances):
        module = sys.modules.get(backends.backend.__module__)
        names = [n for n, v in vars(module).items() if v is backends] if module else []
        if not names:
            raise LookupError(f"moto's {backends.service_name} backends have no module name")
        found[(backends.backend.__module__, names[0])] = backends
    return found


def live_ids(
    singletons: dict[tuple[str, ...], Any], registries: dict[tuple[str, str], Any]
) -> dict[int, tuple[str, ...]]:
    """What the Pickler names instead of pickling: the singletons, moto's registries and the
    accounts' dicts in them, and the backends that only wrap another (`WRAPPERS`)."""
    live: dict[int, tuple[str, ...]] = {id(obj): key for key, obj in singletons.items()}
    for (module, name), backends in registries.items():
        live[id(backends)] = ("backends", module, name)
        for account, regions in backends.items():
            live[id(regions)] = ("account", module, name, account)
            if backends.backend.__name__ in WRAPPERS:
                for region, backend in regions.items():
                    live[id(backend)] = ("region", module, name, account, region)
    return live


def accounts(regions: dict[tuple[str, str], dict[str, list[str]]]) -> None:
    """Creates the accounts' (empty) backend dicts as moto would, with the regions moto listed
    (moto asks botocore for them, which costs more than the rest of a restore)."""
    from moto.core.base_backend import AccountSpecificBackend, BackendDict

    for (module, name), accounts in regions.items():
        backends = getattr(importlib.import_module(module), name)
        for account, names in accounts.items():
            if dict.__contains__(backends, account):
                continue
            found = AccountSpecificBackend.__new__(AccountSpecificBackend)
            found._id = str(uuid.uuid4())
            found.service_name = backends.service_name
            found.account_id = account
            found.backend = backends.backend
            found.regions = list(names)
            dict.__setitem__(backends, account, found)
            if backends not in BackendDict._instances:
                BackendDict._instances.append(backends)


def forget_pages(backend: Any) -> None:
    """The Resource Groups Tagging API keeps a generator per pagination token it handed out,
    which no pickle holds: those tokens are expired after a restore (AWS's own tokens expire
    too; the API says PaginationTokenExpiredException), rather than an HTTP 500."""
    pages = vars(backend).get("_pages")
    if isinstance(pages, dict):
        for token in [
            t for t, page in pages.items() if isinstance(page, dict) and not page.get("gen")
        ]:
            del pages[token]
