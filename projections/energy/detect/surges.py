"""Surges: an hour far above the same hour of the same weekday in recent weeks (median/MAD)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.energy.detect.model import DetectConfig, Episode, Series, robust, runs, weekly_history

if TYPE_CHECKING:
    from datetime import datetime


def surges(series: Series, hours: list[datetime], config: DetectConfig) -> list[Episode]:
    flagged: dict[datetime, tuple[float, float]] = {}
    for hour in hours:
        value = series.get(hour)
        if value is None:
            continue
        history = weekly_history(series, hour, config.history_weeks)
        if len(history) < config.min_history:
            continue
        base, spread = robust(history)
        floor = max(spread, 0.05 * base, 1e-9)
        if value > base * config.surge_ratio and (value - base) / floor > config.surge_k:
            flagged[hour] = (base, value)
    out = []
    for start, end in runs(list(flagged)):
        window = [flagged[h] for h in flagged if start <= h < end]
        base = sum(b for b, _ in window) / len(window)
        seen = max(v for _, v in window)
        out.append(
            Episode(
                "surge", series.name, start, end, round(base, 4), round(seen, 4),
                f"up to {seen:.2f} {series.unit}/h against {base:.2f} {series.unit}/h at the same hours "
                f"of the previous {config.history_weeks} weeks (median; {len(window)} h)",
            )
        )  # fmt: skip
    return out
