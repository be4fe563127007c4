"""Stuck meters: a register that stops moving while the same hours usually use something.

A cumulative meter whose hourly consumption is exactly zero for `stuck_hours` hours in a row,
with readings arriving (a frozen register, not a silent meter: that is a gap), where the same
hours of previous weeks used more than nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.energy.detect.model import DetectConfig, Episode, Series, robust, runs, weekly_history

if TYPE_CHECKING:
    from datetime import datetime


def stuck(series: Series, hours: list[datetime], config: DetectConfig) -> list[Episode]:
    flat = []
    expected: dict[datetime, float] = {}
    for hour in hours:
        value = series.get(hour)
        if value is None or value != 0:  # only a flat hour needs its history
            continue
        history = weekly_history(series, hour, config.history_weeks)
        if len(history) < config.min_history:
            continue
        base, _ = robust(history)
        if base > 0:
            flat.append(hour)
            expected[hour] = base
    out = []
    for start, end in runs(flat):
        count = int((end - start).total_seconds() // 3600)
        if count < config.stuck_hours:
            continue
        base = sum(v for h, v in expected.items() if start <= h < end) / count
        out.append(
            Episode(
                "stuck_meter", series.name, start, end, round(base, 4), 0.0,
                f"register unchanged for {count} h while the same hours used {base:.2f} {series.unit}/h "
                "in previous weeks",
            )
        )  # fmt: skip
    return out
