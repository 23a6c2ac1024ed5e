"""botocore's errors, mapped once into the project's tree (reconciler/errors.py).

Every client made by `aws/clients.py` raises only these, so nothing outside `aws/` imports
botocore, and every caller learns what to do next from the class: RetryableError (throttling
that outlasted botocore's own adaptive retries, 5xx, a dropped connection) carries a delay;
NotFoundError and TerminalError will not get better by waiting. A reply botocore cannot parse
(not JSON or XML, a value of the wrong type) is a MalformedReplyError naming the operation.
"""

from __future__ import annotations

import os
import re
from types import TracebackType

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.parsers import ResponseParserError

from reconciler.errors import (
    MalformedReplyError,
    NotFoundError,
    RetryableError,
    TerminalError,
)

THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
TRANSIENT = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
NOT_FOUND = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NoSuchBucket",
        "NoSuchKey",
        "NotFoundException",
        "InvalidInstanceID.NotFound",
        "InvalidAMIID.NotFound",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
    }
)
# What AWS says, for a few seconds after a role or instance profile is created, to a service
# asked to use it (IAM is eventually consistent): worth asking again, a bounded number of times.
IAM_PROPAGATION = re.compile(
    r"unable to assume|cannot be assumed|not authorized to perform: sts:AssumeRole"
    r"|invalid iam ?instance ?profile|instance profile \S+ (does not exist|not found)"
    r"|role \S+ (does not exist|is invalid)"
    # EventBridge Scheduler, for a role whose trust it cannot see yet:
    r"|execution role you provide must allow .{0,60}to assume the role",
    re.IGNORECASE,
)
IAM_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 15.0)  # about 45 s: IAM propagates in seconds
THROTTLE_DELAY = 5.0
TRANSIENT_DELAY = 10.0


PARSER = os.path.join("botocore", "parsers.py")
# What botocore's parsers raise, unwrapped, for a reply whose values have the wrong type.
PARSING = (AttributeError, TypeError, ValueError, KeyError, IndexError)


def _raised_parsing(tb: TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(PARSER):
            return True
        tb = tb.tb_next
    return False


def translate(exc: BaseException, operation: str = "") -> BaseException:
    """The project's error for a botocore error; anything else is returned as it is.
    `operation` names the call, for errors that do not (a reply that cannot be parsed)."""
    if isinstance(exc, ResponseParserError) or (
        isinstance(exc, PARSING) and _raised_parsing(exc.__traceback__)
    ):
        what = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return MalformedReplyError(
            f"{operation or 'AWS'}: the reply could not be read ({what}): is the endpoint an "
            "AWS API, and did the reply arrive whole?",
            operation=operation,
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "Error")
        op = exc.operation_name or ""
        text = f"{op}: {code}: {err.get('Message', '')}".rstrip(": ")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        kw = {"code": code, "operation": op}
        if code in THROTTLING or status == 429:
            return RetryableError(text, THROTTLE_DELAY, **kw)
        if code in TRANSIENT or status >= 500:
            return RetryableError(text, TRANSIENT_DELAY, **kw)
        if code in NOT_FOUND or code.endswith(".NotFound"):
            return NotFoundError(text, **kw)
        return TerminalError(text, **kw)
    if isinstance(exc, NoCredentialsError):
        return TerminalError(
            "no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; or try everything on the embedded "
            "AWS sandbox with --sandbox, no account needed"
        )
    if isinstance(exc, NoRegionError):
        from reconciler.aws.clients import NO_REGION

        return TerminalError(NO_REGION)
    # A dropped connection or a lost reply (ConnectionClosedError, ReadTimeoutError, ...): the
    # request may or may not have been carried out; retrying is the caller's call (aws/once.py).
    if isinstance(exc, EndpointConnectionError | ConnectionError | HTTPClientError):
        return RetryableError(str(exc), TRANSIENT_DELAY)
    if isinstance(exc, BotoCoreError):
        return TerminalError(str(exc))
    return exc


def message_of(exc: BaseException) -> str:
    """One line for the user: operation, code and message for AWS errors."""
    mapped = translate(exc)
    return str(mapped) or type(mapped).__name__


def iam_propagating(exc: BaseException) -> bool:
    """Whether `exc` is AWS not seeing a role or instance profile that was just created."""
    return isinstance(exc, TerminalError) and bool(IAM_PROPAGATION.search(str(exc)))
