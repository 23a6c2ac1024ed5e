"""The stand-ins' command lines are read as systemd's shutdown reads them (pure functions)."""

from __future__ import annotations

import datetime

import pytest

from reconciler.sandbox.ec2_machine import decode_user_data
from reconciler.sandbox.ec2_standins import Usage, parse_shutdown

NOON = datetime.datetime(2026, 12, 1, 12, 0, 0)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-h", "now"], ("poweroff", 0.0)),
        (["now"], ("poweroff", 0.0)),
        (["-P", "+0"], ("poweroff", 0.0)),
        (["-h", "+1"], ("poweroff", 60.0)),
        ([], ("poweroff", 60.0)),  # systemd: no time is +1
        (["-r", "now"], ("reboot", 0.0)),
        (["-c"], ("cancel", 60.0)),
        (["-k", "now"], ("warn", 0.0)),
        (["--no-wall", "-h", "12:30", "going", "down"], ("poweroff", 1800.0)),
        (["-h", "11:00"], ("poweroff", 23 * 3600.0)),  # tomorrow
    ],
)
def test_shutdown_command_lines(args: list[str], expected: tuple[str, float]) -> None:
    assert parse_shutdown(args, NOON) == expected


@pytest.mark.parametrize("when", ["+soon", "noon", "25"])
def test_a_time_shutdown_cannot_read_is_an_error(when: str) -> None:
    with pytest.raises(Usage, match="time specification"):
        parse_shutdown(["-h", when], NOON)


def test_user_data_is_read_as_cloud_init_reads_it() -> None:
    import gzip

    assert decode_user_data(gzip.compress(b"#!/bin/sh\n")) == b"#!/bin/sh\n"
    assert decode_user_data(b"#!/bin/sh\n") == b"#!/bin/sh\n"
    assert decode_user_data(b"\x1f\x8bnot gzip") == b"\x1f\x8bnot gzip"
