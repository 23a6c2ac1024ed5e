"""Non-idempotent writes: throttling is retried, a lost reply is checked before sending again."""

from __future__ import annotations

import pytest

from reconciler.aws.once import ATTEMPTS, write_once
from reconciler.errors import RetryableError, TerminalError


def test_a_lost_reply_is_looked_up_instead_of_sent_again() -> None:
    sent: list[int] = []

    def send() -> str:
        sent.append(1)
        raise RetryableError("connection closed")  # AWS did it; the reply was lost

    assert write_once(send, lambda: "job-1", sleep=lambda _s: None) == "job-1"
    assert len(sent) == 1


def test_throttling_is_retried_without_a_lookup() -> None:
    answers = iter([RetryableError("slow down", 1.0, code="TooManyRequestsException"), "job-2"])
    looked: list[int] = []

    def send() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def find() -> None:
        looked.append(1)

    assert write_once(send, find, sleep=lambda _s: None) == "job-2"
    assert looked == []


def test_a_write_that_did_not_happen_is_sent_again_and_terminal_errors_are_not() -> None:
    attempts: list[int] = []

    def send() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RetryableError("503")
        return "job-3"

    assert write_once(send, lambda: None, sleep=lambda _s: None) == "job-3"
    assert len(attempts) == 3
    with pytest.raises(TerminalError):
        write_once(lambda: (_ for _ in ()).throw(TerminalError("bad")), lambda: None)


def test_it_gives_up_after_a_bounded_number_of_attempts() -> None:
    attempts: list[int] = []

    def send() -> str:
        attempts.append(1)
        raise RetryableError("503")

    with pytest.raises(RetryableError):
        write_once(send, lambda: None, sleep=lambda _s: None)
    assert len(attempts) == ATTEMPTS
