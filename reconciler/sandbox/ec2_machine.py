"""One emulated EC2 instance's machine: its user data run as cloud-init would, on the host.

`ec2_host.InstanceHost` makes a `Machine` for each instance launched with the tool's ownership
tags (`reconciler.io/managed-by=reconciler`) and calls `boot()` when the instance leaves
`pending`. Its files live under the server's directory, `instances/<instance-id>/`:
- `home/`: the scratch directory, the process's HOME and working directory; removed when the
  instance is terminated (kept while it is stopped, as an EBS root volume would be);
- `cloud-init-output.log`: everything the user data printed (stdout and stderr), as
  /var/log/cloud-init-output.log on an instance; kept after termination, for debugging, and
  returned by GetConsoleOutput;
- `scripts/part-001`: the user data, as cloud-init writes it before running it;
- `bin/`: the stand-ins first on the process's PATH: `shutdown`, `poweroff`, `halt` and
  `reboot` ask the sandbox to end (or reboot) this instance instead of touching the host
  (`ec2_standins`), `sudo` runs its arguments as the same user, and `python3`/`python` run
  the server's interpreter (which has boto3); the `aws` stand-in follows where needed.

Like cloud-init, only a user data that starts with `#!` (after an optional gzip compression)
is run; a cloud-config or MIME document is noted in the log and not run. The process runs in a
process group of its own, which is what a stop, a termination or a reboot kills. What it sees
is what a Batch job's command sees on the sandbox (`job_runner.sandbox_aws`): the sandbox's
endpoint and dummy credentials, the region, nothing of the server's environment but PATH and
the locale; plus RECONCILER_SANDBOX_INSTANCE_ID (no instance metadata service here).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.sandbox import procs
from reconciler.sandbox.job_runner import PASSED_ON, sandbox_aws

INSTANCES_DIR = "instances"  # under the server's directory
LOG_NAME = "cloud-init-output.log"
INSTANCE_ENV = "RECONCILER_SANDBOX_INSTANCE_ID"
# With the instance's directory (unique to one server), how its processes are recognised:
# instance IDs are derived from client tokens, so two sandboxes on one machine (a user's and a
# test run's) can each have an instance of the same ID, and the ID alone killed the other's.
MARK_ENV = "RECONCILER_SANDBOX_INSTANCE_DIR"
CONSOLE_LIMIT = 64 * 1024  # AWS: GetConsoleOutput returns the last 64 KB
POWER_COMMANDS = ("shutdown", "poweroff", "halt", "reboot")
STANDIN = """#!/bin/sh
# The reconciler sandbox's stand-in for `{name}`: it ends this emulated instance, not the host.
exec {python} -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); \\
from reconciler.sandbox.ec2_standins import main; sys.exit(main())' {root} {endpoint} {instance} \\
{name} "$@"
"""
SUDO = """#!/bin/sh
# The reconciler sandbox's sudo: runs its command as the same user (options are ignored).
while [ $# -gt 0 ]; do
  case "$1" in
    -u|-g|-h|-p|-C|-D|-r|-t|-T|-U|--user|--group|--host|--prompt) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
[ $# -eq 0 ] && exec "${{SHELL:-/bin/sh}}"
exec env "$@"
"""
PYTHON = """#!/bin/sh
exec {python} "$@"
"""


def decode_user_data(raw: bytes) -> bytes:
    """The user data as cloud-init reads it: gzip-compressed data is uncompressed."""
    if raw[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            return gzip.decompress(raw)
    return raw


@dataclass(eq=False)
class Machine:
    """The host side of one instance: its directory and, while it runs, its process."""

    instance_id: str
    directory: Path
    endpoint: str
    region: str
    path: str  # a Batch job's PATH on the sandbox (`job_runner.LocalRunner.path`)
    proc: subprocess.Popen[bytes] | None = None
    exit_noted: bool = False
    booted: float = field(default=0.0)

    @property
    def home(self) -> Path:
        return self.directory / "home"

    @property
    def log(self) -> Path:
        return self.directory / LOG_NAME

    def note(self, text: str) -> None:
        """A line of the sandbox's own in the output log, as cloud-init writes its own."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"[reconciler sandbox] {text}\n".encode())

    def boot(self, user_data: bytes | None) -> None:
        """Starts the user data (if it is a script); a failure to start is logged, and the
        instance runs on, as on EC2."""
        self.booted = time.monotonic()
        data = decode_user_data(user_data or b"")
        if not data.startswith(b"#!"):
            kind = "no user data" if not data.strip() else "user data that is not a #! script"
            self.note(f"{self.instance_id}: {kind}: nothing to run (only #! scripts are run)")
            return
        self.home.mkdir(parents=True, exist_ok=True)
        script = self.directory / "scripts" / "part-001"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_bytes(data)
        script.chmod(0o700)
        bin_dir = self._write_standins()
        self.note(f"{self.instance_id}: running its user data ({script})")
        with self.log.open("ab") as out:
            try:
                self.proc = subprocess.Popen(
                    [str(script)],
                    cwd=self.home,
                    env=self.environment(bin_dir),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as a whole
                )
            except OSError as err:
                self.note(f"{self.instance_id}: the user data could not be started: {err}")
                return
        (self.directory / "pid").write_text(str(self.proc.pid))

    def environment(self, bin_dir: Path) -> dict[str, str]:
        env = {"PATH": os.pathsep.join([str(bin_dir), self.path])}
        env.update({name: os.environ[name] for name in PASSED_ON if name in os.environ})
        env.update({"HOME": str(self.home), "SHELL": "/bin/sh", "USER": _user()})
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.region
        env.update(sandbox_aws(self.endpoint))
        env[INSTANCE_ENV] = self.instance_id
        env[MARK_ENV] = str(self.directory.resolve())
        # As on an image with this package installed: `reconciler` and `python3 -m reconciler`
        # are the copy the server runs.
        env["PYTHONPATH"] = _package_root()
        return env

    def _write_standins(self) -> Path:
        bin_dir = self.directory / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        python = shlex.quote(sys.executable)
        texts = {
            name: STANDIN.format(
                name=name,
                python=python,
                root=shlex.quote(_package_root()),
                endpoint=shlex.quote(self.endpoint),
                instance=shlex.quote(self.instance_id),
            )
            for name in POWER_COMMANDS
        }
        texts["sudo"] = SUDO.format()
        texts["python3"] = texts["python"] = PYTHON.format(python=python)
        for name, text in texts.items():
            target = bin_dir / name
            target.write_text(text)
            target.chmod(0o755)
        return bin_dir

    def exited(self) -> int | None:
        """The user data's exit code once it exited (noted in the log once); the instance runs
        on, as on EC2."""
        if self.proc is None or self.proc.poll() is None:
            return None
        if not self.exit_noted:
            self.exit_noted = True
            self.note(f"{self.instance_id}: the user data exited with code {self.proc.returncode}")
        return self.proc.returncode

    def kill(self) -> None:
        """Kills the user data and everything it started: its process group, and the processes
        that left it (the EC2 agent runs the task's command in a session of its own, and a
        script may `setsid` too), found by the instance's mark in their environment."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self.proc = None
        kill_marked(self.directory)
        (self.directory / "pid").unlink(missing_ok=True)

    def discard(self) -> None:
        """The instance is terminated: its processes and its scratch files go; the log stays."""
        self.kill()
        for name in ("home", "bin", "scripts"):
            shutil.rmtree(self.directory / name, ignore_errors=True)

    def console(self) -> bytes:
        try:
            with self.log.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - CONSOLE_LIMIT))
                return log.read()
        except OSError:
            return b""


def leftover(directory: Path) -> int | None:
    """The pid of the instance's user data if it still runs (its pid file names it, and its
    environment says it is that instance's: a pid may have been reused since)."""
    try:
        pid = int((directory / "pid").read_text())
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if pid <= 1 or _mark(directory) not in environ:
        return None
    return pid


def _mark(directory: Path) -> bytes:
    return f"{MARK_ENV}={directory.resolve()}".encode()


def marked(directory: Path) -> list[int]:
    """Processes of this user whose environment marks them as this instance's (of this
    server: its directory says so)."""
    return with_environment(_mark(directory))


def with_environment(mark: bytes) -> list[int]:
    """Processes of this user with `NAME=VALUE` in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (0, 1, os.getpid()):
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # gone, or another user's
    return found


def kill_marked(directory: Path) -> None:
    pids = marked(directory)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    procs.wait_gone(pids)


def kill_leftover(directory: Path) -> bool:
    """Kills the process group a dead server left running for an instance, if any."""
    pid = leftover(directory)
    kill_marked(directory)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
        procs.wait_gone([pid])
        return True
    return False


def running(server_dir: Path) -> int:
    """How many instances' user data run under the server's directory (what a restart would
    kill)."""
    return sum(1 for d in (server_dir / INSTANCES_DIR).glob("i-*") if leftover(d) is not None)


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _user() -> str:
    with contextlib.suppress(KeyError, ImportError):
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    return os.environ.get("USER", "sandbox")
