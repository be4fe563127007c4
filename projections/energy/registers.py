"""Consumption from meter registers: pure functions, no SQL.

A cumulative register only grows. When it is lower than before, one of three things happened:
- rollover: it was near its maximum (`register_max`) and wrapped to near zero: the consumption
  is what was left to the maximum plus what it shows now;
- replacement: a new meter (flagged `replaced` by the source, or a drop to near zero): what the
  new register shows is what was used since; the old meter's last interval is not invented;
- anything else goes `backwards` (a misread, a reset): no consumption, never a negative one.
Consumption of an interval is spread over the hours it covers in proportion to time, so a gap
of a day followed by one reading is not a surge in one hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

ROLLOVER_NEAR = 0.9  # the previous value was above 90 % of the maximum...
ZERO_NEAR = 0.1  # ...and the new one below 10 % of it (or of the previous value: a replacement)
HOUR = timedelta(hours=1)
ROUND = 6


@dataclass(frozen=True, slots=True)
class Step:
    consumption: float | None
    note: str | None = None


def step(
    prev: float | None, value: float, *, kind: str, register_max: float | None = None, replaced: bool = False
) -> Step:
    """The consumption of the interval ending at a reading of `value`, given the previous value."""
    if kind != "cumulative":
        return Step(value if kind == "interval" else None)
    if replaced or prev is None:
        return Step(value, "replaced") if replaced else Step(None)
    delta = value - prev
    if delta >= 0:
        return Step(round(delta, ROUND))
    if (
        register_max is not None
        and prev >= ROLLOVER_NEAR * register_max
        and value <= ZERO_NEAR * register_max
    ):
        return Step(round(register_max - prev + value, ROUND), "rollover")
    # Near zero after a drop: a new meter; anything else is a misread or a reset, never negative.
    return Step(value, "replaced") if value <= ZERO_NEAR * prev else Step(0.0, "backwards")


def floor_hour(at: datetime) -> datetime:
    return _floor_utc(at) if at.tzinfo is UTC else at.replace(minute=0, second=0, microsecond=0)


def hour_of(at: datetime) -> datetime:
    """The hour a reading at `at` closes: a reading at 10:00 ends the 09:00 hour."""
    return _hour_of_utc(at) if at.tzinfo is UTC else floor_hour(at - timedelta(microseconds=1))


# Every series of a campus shares its reading times: each UTC time is floored once. (UTC only:
# equal times in other zones are equal instants whose local hours may differ.)
@lru_cache(maxsize=1 << 16)
def _floor_utc(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


@lru_cache(maxsize=1 << 16)
def _hour_of_utc(at: datetime) -> datetime:
    return _floor_utc(at - timedelta(microseconds=1))


def spread(start: datetime | None, at: datetime, amount: float) -> list[tuple[datetime, float]]:
    """`amount` used over (start, at], as (hour, share) in proportion to the time in each hour."""
    if start is None or at - start <= HOUR or hour_of(at) == floor_hour(start):
        return [(hour_of(at), amount)]
    total = (at - start).total_seconds()
    out: list[tuple[datetime, float]] = []
    hour = floor_hour(start)
    while hour < at:
        lo, hi = max(hour, start), min(hour + HOUR, at)
        if hi > lo:
            out.append((hour, amount * (hi - lo).total_seconds() / total))
        hour += HOUR
    return out


@dataclass(frozen=True, slots=True)
class Interval:
    """A reading with its interval's consumption: (start, at], `consumption` (None: not known)."""

    at: datetime
    value: float
    start: datetime | None
    consumption: float | None
    note: str | None = None


class IntervalLike(Protocol):
    """What `hourly_totals` reads of an interval: an Interval, or a stored reading row."""

    @property
    def at(self) -> datetime: ...
    @property
    def value(self) -> float: ...
    @property
    def start(self) -> datetime | None: ...
    @property
    def consumption(self) -> float | None: ...
    @property
    def note(self) -> str | None: ...


def hourly_totals(
    intervals: Sequence[IntervalLike],
    *,
    consumption: bool,
    lo: datetime | None = None,
    hi: datetime | None = None,
) -> dict[datetime, tuple[float, int, frozenset[str], int]]:
    """hour -> (total, samples, notes, index of the latest interval in it), for hours in [lo, hi).

    Consumption is spread over the hours an interval covers; `samples` counts only the readings
    that closed in the hour, so an hour a gap spans has a share of consumption and no sample.
    Instantaneous values are summed with their count (mean = total / samples).
    """
    rows = [(i.at, i.start, i.value, i.consumption, i.note) for i in intervals]
    return hourly_totals_of(rows, consumption=consumption, lo=lo, hi=hi)


def hourly_totals_of(
    rows: Sequence[Sequence[Any]],
    *,
    consumption: bool,
    lo: datetime | None = None,
    hi: datetime | None = None,
) -> dict[datetime, tuple[float, int, frozenset[str], int]]:
    """`hourly_totals` of rows whose first five items are (at, start, value, consumption, note):
    stored reading rows as the database returns them, or tuples, with no object per interval."""
    # Per hour [total, samples, notes, index], updated in place (no tuple per interval).
    acc: dict[datetime, list[Any]] = {}
    empty: frozenset[str] = frozenset()
    for index, row in enumerate(rows):
        at, note = row[0], row[4]
        own = hour_of(at)
        if consumption:
            used = row[3]
            if used is None:
                continue
            start = row[1]
            # An hour or less (the usual 15-minute reading): spread's first case, without the call.
            if start is not None and at - start > HOUR:
                for hour, amount in spread(start, at, used):
                    if (lo is None or hour >= lo) and (hi is None or hour < hi):
                        _add(acc, hour, amount, closes=hour == own, note=note, index=index)
                continue
            amount = used
        else:
            amount = row[2]
        if (lo is None or own >= lo) and (hi is None or own < hi):
            found = acc.get(own)
            if found is None:
                acc[own] = [0.0 + amount, 1, frozenset((note,)) if note else empty, index]
            else:
                found[0] += amount
                found[1] += 1
                if note:
                    found[2] = found[2] | {note}
                found[3] = index
    return {hour: (a[0], a[1], a[2], a[3]) for hour, a in acc.items()}


def _add(
    acc: dict[datetime, list[Any]],
    hour: datetime,
    share: float,
    *,
    closes: bool,
    note: str | None,
    index: int,
) -> None:
    """One share of an interval in `hour`; `closes`: the reading ends in that hour."""
    found = acc.get(hour)
    if found is None:
        acc[hour] = found = [0.0, 0, frozenset(), index]
    found[0] += share
    found[1] += closes
    if note:
        found[2] = found[2] | {note}
    found[3] = index


def intervals_of(
    readings: list[tuple[datetime, float]],
    *,
    kind: str,
    register_max: float | None = None,
    replaced_at: frozenset[datetime] = frozenset(),
) -> list[Interval]:
    """A series' readings (time order) with each interval's consumption."""
    out: list[Interval] = []
    prev: tuple[datetime, float] | None = None
    for at, value in readings:
        done = step(None if prev is None else prev[1], value, kind=kind, register_max=register_max,
                    replaced=at in replaced_at)  # fmt: skip
        start = prev[0] if prev is not None and kind == "cumulative" else None
        out.append(Interval(at, value, start, done.consumption, done.note))
        prev = (at, value)
    return out
