"""Simultaneous heating and cooling: both valves of one zone open at the same hours."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.energy.detect.model import DetectConfig, Episode, Series, runs

if TYPE_CHECKING:
    from datetime import datetime


def simultaneous(
    zone: str, heating: Series, cooling: Series, hours: list[datetime], config: DetectConfig
) -> list[Episode]:
    both = {}
    for hour in hours:
        heat, cool = heating.get(hour), cooling.get(hour)
        if heat is not None and cool is not None and min(heat, cool) > config.hvac_open_pct:
            both[hour] = (heat, cool)
    out = []
    for start, end in runs(list(both)):
        window = [v for h, v in both.items() if start <= h < end]
        count = len(window)
        if count < config.hvac_hours:
            continue
        heat = sum(h for h, _ in window) / count
        cool = sum(c for _, c in window) / count
        out.append(
            Episode(
                "simultaneous_heating_cooling", f"zone:{zone}", start, end, config.hvac_open_pct,
                round(min(heat, cool), 2),
                f"heating valve {heat:.0f} % and cooling valve {cool:.0f} % open together for {count} h "
                f"(both above {config.hvac_open_pct:.0f} %)",
            )
        )  # fmt: skip
    return out
