"""AWS errors as the user should read them: operation, code and message on one line.

Throttling never reaches here: botocore's adaptive retry mode absorbs it (aws/clients.py).
"""

from __future__ import annotations

from botocore.exceptions import ClientError


def message_of(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = exc.operation_name
        return f"{op}: {err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__
