"""The exception tree. Each branch says what to do next; the CLI maps it to an exit code, the
operator to a retry or to a permanent failure.

    ReconcilerError          exit 1
    ├── UsageError           exit 64: the command line itself is wrong (not 2: diff uses 2)
    ├── ManifestError        bad input: every problem found, as file:line: Kind/name: path: msg
    ├── PlanError            the plan cannot be carried out as asked (conflict, refused delete)
    └── ProviderError        AWS said no, or did not converge
        ├── RetryableError   worth trying again after `delay` seconds (throttling, 5xx, busy)
        │   └── MalformedReplyError   a reply without what the API promises (empty, cut short,
        │                             not AWS's): named by operation and place, never a KeyError
        └── TerminalError    will not get better by waiting (validation, access denied)
            └── NotFoundError   what must exist does not

`aws/errors.py` turns every botocore error into one of these once, at the client; nothing
outside `aws/` sees botocore. Nothing but the CLI prints tracebacks (and only with --debug).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # diff: the plan has changes (terraform's -detailed-exitcode)
EXIT_USAGE = 64  # sysexits.h EX_USAGE
EXIT_INTERRUPTED = 130


class ReconcilerError(Exception):
    """Base of every error the tool expects and explains."""

    exit_code = EXIT_ERROR


class UsageError(ReconcilerError):
    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the input, located as precisely as the YAML allows."""

    file: str
    line: int
    subject: str  # "Kind/name", or "" when the document has no usable identity
    path: str  # dotted path inside the document, "" for the whole document
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        parts = [p for p in (self.subject, self.path) if p]
        return f"{where}: {': '.join([*parts, self.message])}"


class ManifestError(ReconcilerError):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.path, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanError(ReconcilerError):
    pass


class RunFailed(ReconcilerError):
    """A run the command followed ended with failed tasks (recorded: re-applying the same spec
    does not run it again; `rerun` does)."""


class ProviderError(ReconcilerError):
    """An AWS call failed. `code` is AWS's error code ("ClientException"), `operation` the API
    operation, both empty for errors that are not AWS replies."""

    def __init__(self, message: str, *, code: str = "", operation: str = ""):
        super().__init__(message)
        self.code = code
        self.operation = operation


class RetryableError(ProviderError):
    def __init__(self, message: str, delay: float = 5.0, *, code: str = "", operation: str = ""):
        super().__init__(message, code=code, operation=operation)
        self.delay = delay


class MalformedReplyError(RetryableError):
    """A reply that lacks what the API promises or cannot be parsed: an empty or truncated
    body, a proxy's page, an endpoint that is not AWS. Retryable: a reply cut short in transit
    may come whole the next time; the message says what was missing, and where."""

    def __init__(self, message: str, delay: float = 10.0, *, operation: str = ""):
        super().__init__(message, delay, code="MalformedReply", operation=operation)


class TerminalError(ProviderError):
    pass


class NotFoundError(TerminalError):
    pass
