"""The exception tree; the CLI maps each branch to an exit code and a one-line message.

    ReconcilerError
    ├── ManifestError        bad input: every problem found, as file:line: Kind/name: path: msg
    ├── PlanError            the plan cannot be carried out as asked (conflict, refused delete)
    └── ProviderError        AWS said no, or did not converge
        ├── RetryableError   worth trying again later (throttling, still busy)
        └── TerminalError    will not get better by waiting (INVALID status, bad parameter)

No module outside `aws/` and `kinds/` raises ProviderError; nothing but the CLI prints tracebacks
(and only with --debug).
"""

from __future__ import annotations

from dataclasses import dataclass


class ReconcilerError(Exception):
    """Base of every error the tool expects and explains."""


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


class ProviderError(ReconcilerError):
    pass


class RetryableError(ProviderError):
    def __init__(self, message: str, delay: float = 5.0):
        super().__init__(message)
        self.delay = delay


class TerminalError(ProviderError):
    pass
