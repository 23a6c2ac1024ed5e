"""The sandbox clock over HTTP: `reconciler sandbox clock [show | advance DURATION]`.

The clock that fires schedules (`schedule_firing.ScheduleClock`) lives in the server's
process; the CLI reaches it at `/moto-api/reconciler/clock`, a route added to moto's own
`/moto-api/` routes (so the test's in-process server has it too):
- GET: the sandbox's time, how far it was advanced, its time scale;
- POST `{"advance": SECONDS}`: moves the clock forward and fires what fell due before it
  answers, with those firings (schedule, time, execution ID, outcome).

The route is never recorded (durability_patches): replaying a recording must not move the
clock again; the firings it made are recorded as the requests they sent (SubmitJob), and the
offset is kept in the state directory (`CLOCK_FILE`), so a restarted sandbox keeps its time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from reconciler.sandbox.schedule_firing import ScheduleClock

PATH = "/moto-api/reconciler/clock"
CLOCK_FILE = "clock.json"  # in the server's state directory: the offset advances added
MAX_ADVANCE = 366 * 86400.0  # a year at most per call: firings are capped per tick anyway


def install(clock: ScheduleClock) -> None:
    """Adds the route to moto's /moto-api/ routes (before the server's first request), and
    gives the clock the offset a previous server of this state directory had reached."""
    from moto.moto_api._internal import urls

    urls.url_paths["{0}" + PATH] = lambda request, url, headers: _handle(clock, request)
    saved = _clock_file(clock)
    if saved is not None and saved.exists():
        try:
            clock.offset = float(json.loads(saved.read_text()).get("offset") or 0.0)
        except (OSError, ValueError, AttributeError):
            clock.offset = 0.0  # a damaged file: real time, as a new sandbox


def _clock_file(clock: ScheduleClock) -> Path | None:
    directory = clock.config.server_dir
    return Path(directory) / CLOCK_FILE if directory else None


def _state(clock: ScheduleClock) -> dict[str, Any]:
    return {
        "now": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "advancedSeconds": clock.offset,
        "timeScale": clock.config.time_scale,
    }


def _handle(clock: ScheduleClock, request: Any) -> tuple[int, dict[str, str], str]:
    headers = {"Content-Type": "application/json"}
    if request.method == "GET":
        return 200, headers, json.dumps(_state(clock))
    try:
        body = json.loads(request.get_data() or b"{}")
        seconds = float(body["advance"])
    except (ValueError, KeyError, TypeError):
        return 400, headers, json.dumps({"message": 'expected {"advance": SECONDS}'})
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_ADVANCE:
        return 400, headers, json.dumps({"message": f"advance: 0 < seconds <= {MAX_ADVANCE:.0f}"})
    fired = clock.advance(seconds)
    saved = _clock_file(clock)
    if saved is not None:
        saved.write_text(json.dumps({"offset": clock.offset}))
    out = _state(clock)
    out["fired"] = [
        {
            "schedule": f.schedule,
            "time": f.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "execution": f.execution,
            "outcome": f.outcome,
        }
        for f in fired
    ]
    return 200, headers, json.dumps(out)
