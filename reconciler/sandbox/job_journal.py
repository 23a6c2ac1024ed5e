"""What happened to the sandbox's jobs, kept on disk so that a restarted server does not redo it.

moto's recorder replays every request when the sandbox restarts, SubmitJob included, and the
requests alone cannot say what a job did: its outcome depended on time, on its command and on
the host. So the scheduler (`job_scheduler`) writes each step of each job here, as it
happens, one JSON object a line (`jobs.jsonl` in the server's directory):
- `submitted`: when it was created (createdAt);
- `began`: an attempt reached RUNNING (its number, startedAt);
- `ended`: an attempt ended (the attempt as DescribeJobs shows it, and its log events);
- `started`: an array parent's first child ran;
- `finished`: the job is SUCCEEDED or FAILED (status, reason, exit code, times).
When the replayed SubmitJob recreates a job (with the same ID, `job_patches.job_id_for`),
`job_restore` puts it back as its history left it, instead of running it again.

A server without a directory (a test's in-process moto) keeps no journal. A line cut short by a
crash is skipped (its step is redone, as after a host loss); nothing here raises on bad input.
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path
from typing import IO, Any

JOURNAL = "jobs.jsonl"
SUBMITTED, BEGAN, ENDED, STARTED, FINISHED = "submitted", "began", "ended", "started", "finished"

log = logging.getLogger(__name__)


def stamp(when: datetime.datetime) -> str:
    """A moto datetime (naive, local) as text that reads back to the same microsecond."""
    return when.isoformat()


def unstamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


class Journal:
    """The journal of one server; owned by its `JobScheduler`, written under the scheduler's
    lock. `path` None keeps nothing."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._file: IO[str] | None = None
        if path is not None and path.exists():
            self._load(path)

    @classmethod
    def in_directory(cls, directory: str | None) -> Journal:
        return cls(Path(directory) / JOURNAL if directory else None)

    def _load(self, path: Path) -> None:
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                try:
                    entry = json.loads(raw)
                    self._history.setdefault(str(entry["jobId"]), []).append(entry)
                except (ValueError, KeyError, TypeError):
                    log.warning("sandbox journal %s: line %d skipped (damaged)", path, number)

    def take(self, job_id: str) -> list[dict[str, Any]]:
        """The job's recorded steps, in order (once: a job is restored once per server)."""
        return self._history.pop(job_id, [])

    def record(self, event: str, job_id: str, **fields: Any) -> None:
        if self.path is None:
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps({"event": event, "jobId": job_id, **fields}) + "\n")
            self._file.flush()  # a server killed a moment later has it
        except OSError:  # a full disk must not stop the jobs; the step is redone after a restart
            log.exception("sandbox journal %s: could not record %s of %s", self.path, event, job_id)

    def close(self, for_good: bool = False) -> None:
        """Closes the file; `for_good`: records nothing more (the server is stopping)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if for_good:
            self.path = None
