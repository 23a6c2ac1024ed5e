"""One of moto's per-request costs the sandbox does without: same answers, a fraction of the time.

Profiled on a restored sandbox replaying 1,186 recorded requests (55 s on a loaded 2-core
machine), a quarter of the time went to `moto.backends.list_of_moto_modules`: it lists moto's
package directory and stats each of its ~200 entries, twice a request (the server's
`get_backend_for_host`): 205,000 calls, 13 s. The package does not change while the server
runs, so it is listed once. moto calls it through its module, so it is replaced there.

Not changed, though it costs a restored server about a second once: `get_account_id_from`
creates the IAM backend of every partition on the first request, and each draws about a
thousand policy IDs from moto's seeded generator. A recording's IDs were drawn after those:
without them a replay would give the default VPC's security group another ID, and every
request naming the old one would fail.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from moto import backends

_MARK = "_reconciler_sandbox_fast"


@cache
def _moto_modules(list_them: Callable[[], object]) -> tuple[str, ...]:
    return tuple(list_them())  # type: ignore[call-overload]


def install() -> None:
    """Once per process; a second call changes nothing."""
    if getattr(backends.list_of_moto_modules, _MARK, False):
        return
    original = backends.list_of_moto_modules

    def list_of_moto_modules() -> tuple[str, ...]:
        return _moto_modules(original)

    setattr(list_of_moto_modules, _MARK, True)
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]
