"""EventBridge Scheduler's schedule expressions: parsed, checked and evaluated, with no AWS call.

AWS accepts an expression that never fires (`cron(0 0 30 2 ? *)`, February 30th) and says
nothing; nor does moto, which accepts anything. Parsing here lets a manifest's mistakes be
reported at `file:line` before any AWS call, lets the plan show the next firings in the
schedule's own timezone, and lets the sandbox fire schedules at the times AWS would.

Three forms [scheduler]:
- `cron(minutes hours day-of-month month day-of-week year)`: six fields; `,` `-` `*` `/` in
  every field; `?` in exactly one of day-of-month and day-of-week (AWS refuses a value in both);
  `L` (last day of the month; in day-of-week, `nL` is the last weekday n of the month, `L`
  alone Saturday), `nW` (the weekday nearest day n) and `n#k` (the k-th weekday n). Months
  are 1-12 or JAN-DEC, weekdays 1-7 or SUN-SAT (1 is Sunday), years 1970-2199.
- `rate(value unit)`: minute(s), hour(s) or day(s); AWS wants the singular for 1 and the plural
  otherwise. Rates count from the schedule's creation (or start date), not from a clock boundary.
- `at(yyyy-mm-ddThh:mm:ss)`: once, in the schedule's timezone.

Local times a daylight-saving change skips do not fire; a local time that happens twice fires
once, the first time (zoneinfo's fold=0).

[scheduler] https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
WEEKDAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
FIRST_YEAR, LAST_YEAR = 1970, 2199
RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
FORM = re.compile(r"^(cron|rate|at)\((.*)\)$", re.S)
AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


class ExpressionError(ValueError):
    """What is wrong with an expression, in words a user can act on."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    dom: str  # the day-of-month field as written ("?" when day-of-week decides)
    dow: str

    def days(self, year: int, month: int) -> list[int]:
        """The days of `month` this expression fires on."""
        last = calendar.monthrange(year, month)[1]
        if self.dom != "?":
            return sorted(d for d in _month_days(self.dom, year, month) if 1 <= d <= last)
        return sorted(d for d in _week_days(self.dow, year, month) if 1 <= d <= last)


@dataclass(frozen=True)
class Rate:
    seconds: int


@dataclass(frozen=True)
class At:
    when: dt.datetime  # naive, in the schedule's timezone


Expression = Cron | Rate | At


def zone(name: str) -> ZoneInfo:
    """An IANA timezone; ExpressionError for a name the tz database does not know."""
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ExpressionError(f"{name!r} is not an IANA timezone (e.g. Europe/Paris, UTC)") from exc


def parse(text: str) -> Expression:
    match = FORM.match(text.strip())
    if not match:
        raise ExpressionError(
            f"{text!r} is not cron(...), rate(...) or at(...): e.g. 'cron(0 * * * ? *)', "
            "'rate(1 hour)', 'at(2027-01-01T00:00:00)'"
        )
    form, body = match.group(1), match.group(2).strip()
    if form == "rate":
        return _rate(body)
    if form == "at":
        if not AT.match(body):
            raise ExpressionError(f"at({body}): the form is at(yyyy-mm-ddThh:mm:ss)")
        try:
            return At(dt.datetime.fromisoformat(body))
        except ValueError as exc:
            raise ExpressionError(f"at({body}): {exc}") from exc
    return _cron(body)


def _rate(body: str) -> Rate:
    parts = body.split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise ExpressionError(f"rate({body}): the form is rate(value unit), e.g. rate(5 minutes)")
    value, unit = int(parts[0]), parts[1]
    if value < 1:
        raise ExpressionError(f"rate({body}): the value must be a positive whole number")
    singular = unit.removesuffix("s")
    if singular not in RATE_UNITS:
        raise ExpressionError(f"rate({body}): the unit is minute(s), hour(s) or day(s)")
    if (value == 1) != (unit == singular):
        want = singular if value == 1 else singular + "s"
        raise ExpressionError(f"rate({body}): AWS wants {value} {want}")
    return Rate(value * RATE_UNITS[singular])


def _cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ExpressionError(
            f"cron({body}): {len(fields)} fields; AWS's cron has six: minutes hours "
            "day-of-month month day-of-week year"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(
            f"cron({body}): exactly one of day-of-month and day-of-week must be '?'"
        )
    cron = Cron(
        minutes=_values(minute, 0, 59, "minutes"),
        hours=_values(hour, 0, 23, "hours"),
        months=_values(month, 1, 12, "month", MONTHS),
        years=_values(year, FIRST_YEAR, LAST_YEAR, "year"),
        dom=dom,
        dow=dow,
    )
    # Check the day fields' syntax once, on any month.
    if dom != "?":
        _month_days(dom, 2000, 1)
    else:
        _week_days(dow, 2000, 1)
    return cron


def _number(text: str, low: int, high: int, what: str, names: dict[str, int] | None) -> int:
    value = (names or {}).get(text.upper())
    if value is None:
        if not text.isdigit():
            raise ExpressionError(f"{what}: {text!r} is not a number from {low} to {high}")
        value = int(text)
    if not low <= value <= high:
        raise ExpressionError(f"{what}: {value} is out of range {low}-{high}")
    return value


def _values(
    field: str, low: int, high: int, what: str, names: dict[str, int] | None = None
) -> frozenset[int]:
    out: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ExpressionError(f"{what}: {item!r}: the step must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, low, high, what, names), _number(b, low, high, what, names)
            if start > end:
                raise ExpressionError(f"{what}: {item!r}: the range runs backwards")
        else:
            start = _number(base, low, high, what, names)
            end = high if step_text else start
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _aws_weekday(year: int, month: int, day: int) -> int:
    """1 (Sunday) to 7 (Saturday), as AWS numbers them."""
    return (dt.date(year, month, day).weekday() + 1) % 7 + 1


def _month_days(field: str, year: int, month: int) -> set[int]:
    last = calendar.monthrange(year, month)[1]
    if field == "L":
        return {last}
    if field.endswith("W"):
        day = _number(field[:-1], 1, 31, "day-of-month", None)
        if day > last:
            return set()
        weekday = _aws_weekday(year, month, day)
        if weekday == 7:  # Saturday: the Friday before, unless that is last month
            return {day - 1 if day > 1 else day + 2}
        if weekday == 1:  # Sunday: the Monday after, unless that is next month
            return {day + 1 if day < last else day - 2}
        return {day}
    return set(_values(field, 1, 31, "day-of-month"))


def _week_days(field: str, year: int, month: int) -> set[int]:
    last = calendar.monthrange(year, month)[1]
    all_days = range(1, last + 1)
    if field == "L":
        field = "7"  # the last day of the week
    if "#" in field:
        day_text, _, nth_text = field.partition("#")
        weekday = _number(day_text, 1, 7, "day-of-week", WEEKDAYS)
        nth = _number(nth_text, 1, 5, "day-of-week (#)", None)
        matching = [d for d in all_days if _aws_weekday(year, month, d) == weekday]
        return {matching[nth - 1]} if nth <= len(matching) else set()
    if field.endswith("L"):
        weekday = _number(field[:-1], 1, 7, "day-of-week", WEEKDAYS)
        return {max(d for d in all_days if _aws_weekday(year, month, d) == weekday)}
    weekdays = _values(field, 1, 7, "day-of-week", WEEKDAYS)
    return {d for d in all_days if _aws_weekday(year, month, d) in weekdays}


def _local(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    """`naive` in `tz`, or None if that local time does not exist (a DST gap)."""
    aware = naive.replace(tzinfo=tz)
    back = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    return aware if back == naive else None


def firings(
    expression: Expression | str,
    tz_name: str,
    after: dt.datetime,
    count: int = 3,
    origin: dt.datetime | None = None,
) -> list[dt.datetime]:
    """The next `count` firing times strictly after `after` (aware), in the timezone `tz_name`.

    A rate counts from `origin` (when the schedule was created; default `after`).
    """
    expr = parse(expression) if isinstance(expression, str) else expression
    tz = zone(tz_name)
    after = after.astimezone(tz)
    if isinstance(expr, At):
        when = _local(expr.when, tz)
        return [when] if when is not None and when > after and count > 0 else []
    if isinstance(expr, Rate):
        start = (origin or after).astimezone(tz)
        step = dt.timedelta(seconds=expr.seconds)
        k = max(1, int((after - start) / step) + 1)
        while start + k * step <= after:
            k += 1
        return [(start + (k + i) * step).astimezone(tz) for i in range(count)]
    out: list[dt.datetime] = []
    begin = after.replace(tzinfo=None)
    for year in sorted(y for y in expr.years if y >= begin.year):
        for month in sorted(expr.months):
            if (year, month) < (begin.year, begin.month):
                continue
            for day in expr.days(year, month):
                if dt.date(year, month, day) < begin.date():
                    continue
                for hour in sorted(expr.hours):
                    for minute in sorted(expr.minutes):
                        when = _local(dt.datetime(year, month, day, hour, minute), tz)
                        if when is not None and when > after:
                            out.append(when)
                            if len(out) >= count:
                                return out
    return out


def never_fires_problem(text: str, tz_name: str = "UTC") -> str | None:
    """Why a valid expression can never fire at all (February 30th), else None. Time-free:
    whether it fires *again* from now is a preflight question (`firings` from now)."""
    expr = parse(text)
    if isinstance(expr, Cron):
        start = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=dt.UTC)
        if not firings(expr, tz_name, start, count=1):
            return f"{text} never fires: no date matches it"
    return None


def firings_between(
    expression: Expression | str,
    tz_name: str,
    after: dt.datetime,
    count: int = 3,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    origin: dt.datetime | None = None,
) -> list[dt.datetime]:
    """`firings` within a schedule's StartDate and EndDate (aware; either may be None): none
    before `start` (a firing at `start` counts; a rate counts from it), none from `end` on.
    Scheduler ignores both for a one-time `at()` schedule."""
    expr = parse(expression) if isinstance(expression, str) else expression
    if isinstance(expr, At):
        return firings(expr, tz_name, after, count)
    if start is not None:
        origin = start
        after = max(after, start - dt.timedelta(microseconds=1))
    found = firings(expr, tz_name, after, count, origin)
    return [t for t in found if end is None or t < end]
