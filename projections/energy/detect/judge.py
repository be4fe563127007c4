"""All detectors over one series (or one zone's valves) for the hours being judged.

A surge inside a leak's window is the leak seen hour by hour: only the leak is reported.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from projections.energy.detect.gaps import gaps
from projections.energy.detect.hvac import simultaneous
from projections.energy.detect.leaks import leaks, night_hours
from projections.energy.detect.stuck import stuck
from projections.energy.detect.surges import surges

if TYPE_CHECKING:
    from collections.abc import Collection

    from projections.energy.detect.model import DetectConfig, Episode, Series


def local_days(hours: list[datetime], config: DetectConfig) -> list[date]:
    """Local days whose night ends within `hours` (its earlier hours were judged before, or now)."""
    judged = set(hours)
    days = sorted({h.astimezone(config.tz).date() for h in hours})
    return [d for d in days if night_hours(d, config)[-1] in judged]


def day_hours(day: date, config: DetectConfig) -> list[datetime]:
    start = datetime.combine(day, time(), tzinfo=config.tz).astimezone(UTC)
    return [start + timedelta(hours=i) for i in range(24)]


def judge_series(
    series: Series,
    sampled: Collection[datetime],
    hours: list[datetime],
    config: DetectConfig,
    *,
    consumption: bool,
) -> list[Episode]:
    """Episodes of one series over `hours` (UTC, sorted); history is whatever `series` holds."""
    found = gaps(series.name, sampled, hours, config)
    if not consumption:
        return found
    leak = leaks(series, local_days(hours, config), config)
    # A leak runs all day, not only at night: a surge the same local day is that leak.
    shadow = [(e.start - timedelta(hours=12), e.end + timedelta(hours=19)) for e in leak]
    surge = [
        s for s in surges(series, hours, config) if not any(s.start < hi and lo < s.end for lo, hi in shadow)
    ]
    return [*leak, *surge, *stuck(series, hours, config), *found]


def judge_zone(
    zone: str, heating: Series, cooling: Series, hours: list[datetime], config: DetectConfig
) -> list[Episode]:
    return simultaneous(zone, heating, cooling, hours, config)
