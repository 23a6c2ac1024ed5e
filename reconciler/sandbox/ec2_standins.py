"""`shutdown`, `poweroff`, `halt` and `reboot` for a user data on the sandbox: they end the
emulated instance, never the host.

`ec2_machine` writes a small script per name into the instance's `bin/`, first on the user
data's PATH, that runs `main()` with the sandbox's endpoint and the instance's ID. It asks the
server (`POST /moto-api/config`, `{"reconcilerSandbox": {"ec2": {"powerOff": ...}}}`, handled
by `ec2_patches`) to do what the command would do to a real instance, and the server applies
the instance's InstanceInitiatedShutdownBehavior (`stop`, the default, or `terminate`) and
kills the instance's processes, this one included. Accepted as systemd's commands take them:
- `shutdown [-h|-P|-H|-r|-k|-c] [now|+MINUTES|HH:MM] [MESSAGE]` (no time: +1, as systemd);
  a later time is kept by the server (sandbox time: RECONCILER_SANDBOX_TIME_SCALE), and
  `shutdown -c` cancels it; `-k` only warns;
- `poweroff`, `halt` (both power the instance off: EC2 has no halted state) and `reboot`
  (the instance's processes are killed and it stays running; its user data does not run
  again, as cloud-init runs it once per instance), their options ignored.
A command that calls `/sbin/shutdown` by its absolute path reaches the host's own, which an
unprivileged user cannot run; the sandbox cannot catch that (nor `systemctl poweroff`).
Standard library only: it runs in the user data's process.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
import urllib.error
import urllib.request

USAGE_EXIT = 1
GOING_DOWN_WAIT = 30.0  # seconds the command waits for the sandbox to end it, as the OS would


class Usage(Exception):
    """A command line the stand-in cannot use."""


def parse_shutdown(args: list[str], now: datetime.datetime) -> tuple[str, float]:
    """(action, delay in seconds) for `shutdown ARGS`; action is poweroff, reboot, cancel or
    warn."""
    action, when = "poweroff", None
    for arg in args:
        if arg in ("-r", "--reboot"):
            action = "reboot"
        elif arg in ("-h", "-P", "-H", "--poweroff", "--halt"):
            action = action if action == "reboot" else "poweroff"
        elif arg in ("-c",):
            action = "cancel"
        elif arg in ("-k",):
            action = "warn"
        elif arg.startswith("-"):
            continue  # --no-wall and the like
        elif when is None:
            when = arg
        # anything after the time is the wall message
    return action, _delay(when or "+1", now)


def _delay(when: str, now: datetime.datetime) -> float:
    if when == "now":
        return 0.0
    if when.startswith("+"):
        try:
            return max(0.0, float(int(when[1:]) * 60))
        except ValueError:
            raise Usage(f"failed to parse time specification: {when}") from None
    try:
        hours, minutes = (int(part) for part in when.split(":"))
        target = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    except ValueError:
        raise Usage(f"failed to parse time specification: {when}") from None
    if target <= now:
        target += datetime.timedelta(days=1)
    return (target - now).total_seconds()


def request(endpoint: str, instance: str, action: str, delay: float) -> None:
    body = {
        "reconcilerSandbox": {
            "ec2": {"powerOff": {"instanceId": instance, "action": action, "delaySeconds": delay}}
        }
    }
    req = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as reply:
        reply.read()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    endpoint, instance, name, *args = argv
    try:
        if name == "shutdown":
            action, delay = parse_shutdown(args, datetime.datetime.now())
        else:
            action, delay = ("reboot" if name == "reboot" else "poweroff"), 0.0
        if action == "warn":
            return 0
        request(endpoint, instance, action, delay)
    except Usage as why:
        print(f"{name}: {why}", file=sys.stderr)
        return USAGE_EXIT
    except (OSError, urllib.error.URLError) as err:
        print(
            f"{name}: the reconciler sandbox at {endpoint} did not answer: {err}", file=sys.stderr
        )
        return USAGE_EXIT
    if action == "cancel":
        return 0
    if delay > 0:
        at = datetime.datetime.now() + datetime.timedelta(seconds=delay)
        print(f"Shutdown scheduled for {at:%a %Y-%m-%d %H:%M:%S}, use 'shutdown -c' to cancel.")
        return 0
    time.sleep(GOING_DOWN_WAIT)  # the sandbox kills this process with the instance's others
    return 0
