"""Base-load leaks: the night's base load above the same meter's recent nights.

The night (local `night_hours`) is when a zone uses least; its median is the base load. A night
whose base load is well above the median of the previous weeks' nights (robust z-score and
ratio) is a leak: water running at 3 a.m., lights or plant left on. Weekend nights are compared
with the same weekday's nights, weekday nights with weekday nights.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from statistics import median
from typing import TYPE_CHECKING

from projections.energy.detect.model import HOUR, DetectConfig, Episode, Series, robust

if TYPE_CHECKING:
    from collections.abc import Iterable


def night_hours(day: date, config: DetectConfig) -> list[datetime]:
    """The UTC hours of the night that ends on local `day`."""
    first, last = config.night_hours
    return list(_night(day, first, last, config.tz))


# Each day's night is asked for by every series and by the weeks of nights after it: once each.
@lru_cache(maxsize=1 << 12)
def _night(day: date, first: int, last: int, tz: tzinfo) -> tuple[datetime, ...]:
    start = datetime.combine(day, time(first), tzinfo=tz).astimezone(UTC)
    return tuple(start + timedelta(hours=i) for i in range(last - first))


def base_load(series: Series, day: date, config: DetectConfig) -> float | None:
    get = series.values.get
    first, last = config.night_hours
    values = [v for h in _night(day, first, last, config.tz) if (v := get(h)) is not None]
    return median(values) if len(values) >= 2 else None


def _comparable(day: date, back: int) -> bool:
    weekend = day.weekday() >= 5
    other = day - timedelta(days=back)
    return (other.weekday() >= 5) == weekend


def leaks(series: Series, days: Iterable[date], config: DetectConfig) -> list[Episode]:
    out = []
    # A night is history for the weeks of nights after it: each night's base load once per call.
    loads: dict[date, float | None] = {}

    def load(day: date) -> float | None:
        if day not in loads:
            loads[day] = base_load(series, day, config)
        return loads[day]

    for day in days:
        observed = load(day)
        if observed is None:
            continue
        history = [
            b
            for back in range(1, 7 * config.history_weeks + 1)
            if _comparable(day, back) and (b := load(day - timedelta(days=back))) is not None
        ]
        if len(history) < config.min_history:
            continue
        base, spread = robust(history)
        floor = max(spread, 0.05 * base, 1e-9)
        if observed > base * config.leak_ratio and (observed - base) / floor > config.leak_k:
            hours = night_hours(day, config)
            out.append(
                Episode(
                    "base_load_leak", series.name, hours[0], hours[-1] + HOUR,
                    round(base, 4), round(observed, 4),
                    f"night base load {observed:.3f} {series.unit}/h against {base:.3f} {series.unit}/h "
                    f"(median of {len(history)} comparable nights)",
                )
            )  # fmt: skip
    return out
