"""AWS schedule expressions: parsing, next firings in a timezone, expressions that never fire."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.cron import (
    ExpressionError,
    firings,
    firings_between,
    never_fires_problem,
    parse,
    zone,
)

NOW = dt.datetime(2026, 12, 1, 8, 43, tzinfo=dt.UTC)  # a Tuesday


def shown(expression: str, tz: str = "UTC", after: dt.datetime = NOW, count: int = 3) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M %Z") for t in firings(expression, tz, after, count)]


def test_hourly_cron_fires_on_the_hour() -> None:
    assert shown("cron(0 * * * ? *)") == [
        "2026-12-01 09:00 UTC",
        "2026-12-01 10:00 UTC",
        "2026-12-01 11:00 UTC",
    ]


def test_weekdays_in_a_timezone_are_local_times() -> None:
    # 09:30 in Paris is 08:30 UTC: today's has passed at 08:43 UTC.
    assert shown("cron(30 9 ? * MON-FRI *)", "Europe/Paris") == [
        "2026-12-02 09:30 CET",
        "2026-12-03 09:30 CET",
        "2026-12-04 09:30 CET",
    ]


def test_weekday_numbers_start_on_sunday() -> None:
    assert shown("cron(0 12 ? * 1 *)", count=1) == ["2026-12-06 12:00 UTC"]  # a Sunday


def test_last_day_nth_weekday_and_nearest_weekday() -> None:
    assert shown("cron(0 0 L * ? *)", count=3) == [
        "2026-12-31 00:00 UTC",
        "2027-01-31 00:00 UTC",
        "2027-02-28 00:00 UTC",
    ]
    assert shown("cron(0 2 ? * 6#3 *)", count=2) == [  # third Friday
        "2026-12-18 02:00 UTC",
        "2027-01-15 02:00 UTC",
    ]
    assert shown("cron(0 2 ? * 6L *)", count=1) == ["2026-12-25 02:00 UTC"]  # last Friday
    # 2027-05-01 is a Saturday: 1W is Monday the 3rd (never the previous month).
    assert shown("cron(0 0 1W 5 ? 2027)", count=1) == ["2027-05-03 00:00 UTC"]


def test_steps_ranges_lists_and_names() -> None:
    assert shown("cron(0/20 8-9 ? * TUE *)", count=4) == [
        "2026-12-01 09:00 UTC",
        "2026-12-01 09:20 UTC",
        "2026-12-01 09:40 UTC",
        "2026-12-08 08:00 UTC",
    ]
    assert shown("cron(15 6 1,15 JAN,JUL ? *)", count=2) == [
        "2027-01-01 06:15 UTC",
        "2027-01-15 06:15 UTC",
    ]


def test_rate_counts_from_the_origin() -> None:
    origin = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    times = firings("rate(20 minutes)", "UTC", NOW, 2, origin=origin)
    assert [t.strftime("%H:%M") for t in times] == ["09:00", "09:20"]


def test_at_fires_once_in_its_timezone_and_not_in_the_past() -> None:
    assert shown("at(2027-01-01T00:00:00)", "America/New_York") == ["2027-01-01 00:00 EST"]
    assert shown("at(2020-01-01T00:00:00)") == []


def test_a_local_time_skipped_by_daylight_saving_does_not_fire() -> None:
    # 2027-03-28 02:30 does not exist in Paris (clocks go from 02:00 to 03:00).
    after = dt.datetime(2027, 3, 27, tzinfo=dt.UTC)
    assert shown("cron(30 2 * * ? *)", "Europe/Paris", after, 2) == [
        "2027-03-27 02:30 CET",
        "2027-03-29 02:30 CEST",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 * * * *)", "5 fields"),
        ("cron(0 * * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 * ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 * * * ? *)", "minutes: 60 is out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is out of range 0-23"),
        ("cron(0 0 ? FOO * *)", "month: 'FOO' is not a number"),
        ("cron(0 0 ? * 8 *)", "day-of-week: 8 is out of range 1-7"),
        ("cron(0 0 * * ? 1969)", "year: 1969 is out of range 1970-2199"),
        ("cron(0 5-2 * * ? *)", "the range runs backwards"),
        ("cron(0/0 * * * ? *)", "the step must be a positive number"),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(5 minute)", "AWS wants 5 minutes"),
        ("rate(1 weeks)", "minute(s), hour(s) or day(s)"),
        ("at(2027-01-01 00:00:00)", "the form is at(yyyy-mm-ddThh:mm:ss)"),
        ("hourly", "is not cron(...), rate(...) or at(...)"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(expression)


def test_never_fires() -> None:
    assert (
        never_fires_problem("cron(0 0 30 2 ? *)")
        == "cron(0 0 30 2 ? *) never fires: no date matches it"
    )
    assert never_fires_problem("cron(0 0 31 4,6,9,11 ? *)") is not None
    assert never_fires_problem("cron(0 0 29 2 ? *)") is None  # leap years
    assert never_fires_problem("rate(1 day)") is None


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "/UTC"])
def test_timezones_must_be_iana_names(name: str) -> None:
    with pytest.raises(ExpressionError, match="is not an IANA timezone"):
        zone(name)


def test_start_and_end_dates_bound_the_firings() -> None:
    def between(expression: str, **window: dt.datetime) -> list[str]:
        found = firings_between(expression, "Europe/Paris", NOW, 3, **window)
        return [t.strftime("%Y-%m-%d %H:%M %Z") for t in found]

    start = dt.datetime(2026, 12, 24, 23, 0, tzinfo=dt.UTC)  # midnight in Paris: it fires
    assert between("cron(0 * * * ? *)", start=start) == [
        "2026-12-25 00:00 CET",
        "2026-12-25 01:00 CET",
        "2026-12-25 02:00 CET",
    ]
    end = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Paris: not included
    assert between("cron(0 * * * ? *)", end=end) == ["2026-12-01 10:00 CET"]
    assert between("cron(0 * * * ? *)", end=NOW) == []  # an end in the past: never again
    # A rate counts from its start date, not from now.
    assert between("rate(2 hours)", start=dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)) == [
        "2026-12-01 10:15 CET",
        "2026-12-01 12:15 CET",
        "2026-12-01 14:15 CET",
    ]
    # Scheduler ignores both for a one-time schedule.
    assert between("at(2026-12-02T09:00:00)", end=end) == ["2026-12-02 09:00 CET"]
