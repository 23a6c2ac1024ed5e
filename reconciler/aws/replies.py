"""AWS replies that say what is wrong with them when they lack what the API promises.

botocore parses a reply against the service model but lets any member be absent: an empty
body, a proxy's error page or a truncated answer all become `{}`. Code that reads replies
indexes them (`out["jobDefinitions"]`, `job["jobId"]`), and a KeyError from deep inside a kind
was a traceback. Every reply made by `aws/clients.py` is therefore handed out as `Reply`: a
plain dict (it compares, copies and serialises as one) whose missing keys raise
MalformedReplyError, naming the operation and where in the reply the key was expected, instead
of KeyError. `.get()` still tolerates absence where absence means something.

A reply botocore cannot parse at all (a value of the wrong type, a body that is not JSON or
XML) is turned into the same error by `aws/errors.py`.
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import MalformedReplyError

SUSPECT = "is the endpoint an AWS API, and did the reply arrive whole?"


class Reply(dict[str, Any]):
    """A reply or a part of one: indexing a key it lacks is a MalformedReplyError."""

    __slots__ = ("_operation", "_where")

    def __missing__(self, key: str) -> Any:
        where = f" {self._where}" if self._where else ""
        raise MalformedReplyError(
            f"{self._operation}: the reply{where} has no {key!r}: {SUSPECT}",
            operation=self._operation,
        )


def reply(value: Any, operation: str, where: str = "") -> Any:
    """`value` with every mapping in it made a `Reply` for `operation`."""
    if isinstance(value, dict):
        out = Reply(
            (k, reply(v, operation, f"{where}.{k}" if where else k)) for k, v in value.items()
        )
        out._operation = operation
        out._where = where
        return out
    if isinstance(value, list):
        return [reply(v, operation, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
