"""What detectors take and give: hourly series, thresholds, episodes (the evidence)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from statistics import median
from zoneinfo import ZoneInfo

HOUR = timedelta(hours=1)
MAD_SCALE = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal noise


@dataclass(frozen=True, slots=True)
class DetectConfig:
    """Thresholds. Defaults suit 15-minute sub-meters of a hospital campus."""

    history_weeks: int = 4  # how far back a baseline looks
    min_history: int = 2  # fewer comparable points than this: no judgement (nothing invented)
    surge_k: float = 5.0  # robust z-score over the same hour of recent weeks
    surge_ratio: float = 1.5  # ... and at least this many times the baseline
    night_hours: tuple[int, int] = (1, 5)  # local [start, end): when a hospital zone uses least
    leak_k: float = 4.0
    leak_ratio: float = 1.3
    stuck_hours: int = 6  # a register flat this long while the same hours usually use something
    gap_hours: int = 2  # this many hours without a reading is a gap
    hvac_open_pct: float = 20.0  # both valves above this ...
    hvac_hours: int = 2  # ... for this many hours
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))


@dataclass(frozen=True, slots=True)
class Episode:
    kind: str  # base_load_leak | surge | simultaneous_heating_cooling | stuck_meter | gap
    scope: str  # a series (MTR-<meter>/<quantity>) or zone:<id>
    start: datetime
    end: datetime  # exclusive
    baseline: float | None
    observed: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Series:
    """One series' hourly values; `samples` holds the hours that had at least one reading."""

    name: str
    values: dict[datetime, float]
    unit: str = ""

    def get(self, hour: datetime) -> float | None:
        return self.values.get(hour)


def robust(history: list[float]) -> tuple[float, float]:
    """(median, MAD x 1.4826) of `history`."""
    mid = median(history)
    return mid, MAD_SCALE * median(abs(v - mid) for v in history)


def runs(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours as [start, end) windows."""
    out: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if out and out[-1][1] == hour:
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


def weekly_history(series: Series, hour: datetime, weeks: int) -> list[float]:
    """The same hour of the same weekday over the previous `weeks` weeks, where known."""
    get = series.values.get
    back = _weeks_back(hour, weeks) if hour.tzinfo is UTC else _shifted(hour, weeks)
    return [v for h in back if (v := get(h)) is not None]


def _shifted(hour: datetime, weeks: int) -> tuple[datetime, ...]:
    return tuple(hour - timedelta(weeks=w) for w in range(1, weeks + 1))


# Every series of a campus is judged over the same UTC hours: each hour's weeks back are computed
# once. (UTC only: in a zone with clock changes, equal instants can differ in wall-clock arithmetic.)
_weeks_back = lru_cache(maxsize=1 << 16)(_shifted)
