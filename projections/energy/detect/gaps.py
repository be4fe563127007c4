"""Gaps: hours with no reading. Reported, never filled in: nothing is invented."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.energy.detect.model import DetectConfig, Episode, runs

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime


def gaps(
    name: str, sampled: Collection[datetime], hours: list[datetime], config: DetectConfig
) -> list[Episode]:
    """Runs of at least `gap_hours` judged hours that had no reading at all."""
    missing = [h for h in hours if h not in sampled]
    out = []
    for start, end in runs(missing):
        count = int((end - start).total_seconds() // 3600)
        if count >= config.gap_hours:
            out.append(Episode("gap", name, start, end, None, None, f"no reading for {count} h"))
    return out
