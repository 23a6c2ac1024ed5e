"""How the sandbox replaces moto methods without keeping state in module globals.

moto looks its behaviour up on its classes, so a patch has to be set on a class. What a patch
needs between requests (the job scheduler, when a queue let go of a compute environment) lives
in the object that installed it: each replacement calls a method of that object, and carries a
reference to the object that installed it, so that `reconciler.sandbox.moto_ext.install()` can
find an earlier installation instead of patching twice. `job_patches` and `resource_patches`
use this; nothing else should set attributes on moto's classes (or on its modules: a moto
function its callers look up at each call is replaced with `replace_function`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

OWNER_ATTR = "_reconciler_sandbox_owner"


def owner_of(cls: type, name: str) -> object | None:
    """The object whose replacement is `cls.name`, or None while moto's own method is there."""
    return getattr(cls.__dict__.get(name), OWNER_ATTR, None)


class Patcher:
    """Replaces moto methods on behalf of one owner (the server's `Extensions`)."""

    def __init__(self, owner: object) -> None:
        self.owner = owner

    def replace(self, cls: type, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Makes `obj.name(...)` call `handler(obj, ...)`; returns the method it replaced."""
        original: Callable[..., Any] = getattr(cls, name)

        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            return handler(obj, *args, **kwargs)

        functools.update_wrapper(method, original)
        setattr(method, OWNER_ATTR, self.owner)
        setattr(cls, name, method)
        return original

    def replace_function(
        self, module: ModuleType, name: str, handler: Callable[..., Any]
    ) -> Callable[..., Any]:
        """Makes `module.name(...)` call `handler(...)`, for a moto function its callers look
        up in its module at each call; returns the function it replaced."""
        original: Callable[..., Any] = getattr(module, name)

        def function(*args: Any, **kwargs: Any) -> Any:
            return handler(*args, **kwargs)

        functools.update_wrapper(function, original)
        setattr(function, OWNER_ATTR, self.owner)
        setattr(module, name, function)
        return original
