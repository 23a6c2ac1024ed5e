"""The cyclic garbage collector, paused while a process makes many objects that live as long as
it does and no garbage: the models' validators a command line builds (`cli.options`), moto's
state a sandbox snapshot pickles or loads (`sandbox.snapshot`). Each collection would walk all
of them again, every few hundred allocations, for nothing to free."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection in the block; afterwards (after an error too) the collector is as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
