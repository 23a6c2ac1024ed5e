"""AWS errors as the user should read them, and the few codes the kinds react to."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.errors import ProviderError, RetryableError, TerminalError

THROTTLING = {"Throttling", "ThrottlingException", "TooManyRequestsException"}


def code_of(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def message_of(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = exc.operation_name
        return f"{op}: {err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__


def translate(exc: BaseException) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if code_of(exc) in THROTTLING:
        return RetryableError(message_of(exc))
    if isinstance(exc, ClientError | BotoCoreError):
        return TerminalError(message_of(exc))
    return ProviderError(message_of(exc))
