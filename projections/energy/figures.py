"""The site's figures energy intensity divides by: floor area, open beds, occupied bed-days.

They come from the BMS mapping in force (hub.bootstrap reads it when asked, so a reloaded
mapping gives new figures). Bed-days of a period: for a month, the department's (or campus's)
occupied bed-days from the HIS census where given; for a day, that month's census spread evenly
over its days; otherwise open beds x days. An hour has no bed-days.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

Basis = Literal["census", "beds"]


@dataclass(frozen=True, slots=True)
class SiteFigures:
    areas: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (level, id) -> m2
    beds: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (level, id) -> open beds
    occupied: Mapping[tuple[str, str, str], float] = field(default_factory=dict)  # (level, id, month)
    names: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (level, id) -> display name


def bed_days(
    figures: SiteFigures, level: str, ident: str, period: str, grain: str
) -> tuple[float, Basis] | None:
    """The bed-days of `period` (a day 2024-06-12 or a month 2024-06) at (level, ident)."""
    if grain == "hour":
        return None
    month = period[:7]
    days = calendar.monthrange(int(month[:4]), int(month[5:7]))[1]
    census = figures.occupied.get((level, ident, month))
    if census is not None:
        return (census, "census") if grain == "month" else (round(census / days, 4), "census")
    beds = figures.beds.get((level, ident))
    if not beds:
        return None
    return beds * (days if grain == "month" else 1), "beds"
