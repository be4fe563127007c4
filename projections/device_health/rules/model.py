"""What the device-health rules take and give: a device's daily history, its fleet, findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date  # noqa: TC003  (dataclass fields are read at runtime)
from statistics import median

MAD_SCALE = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal noise


@dataclass(frozen=True, slots=True)
class Day:
    """One device-day, folded from the telemetry of that (site) day.

    Cumulative counters are the day's last reading; alarms and errors are what the day reported.
    """

    day: date
    usage_hours: float | None = None
    power_on_cycles: int | None = None
    battery_pct: float | None = None
    alarms: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Device:
    """One device's history, oldest day first, and what the registry says about it."""

    subject: str
    device_type: str
    days: tuple[Day, ...]
    last_pm: date | None = None  # last preventive maintenance on record, if any


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's conclusion about one device, with the evidence that makes it explainable."""

    rule_id: str
    category: str  # battery | errors | usage | alarms
    subject: str
    start: date
    end: date  # inclusive: the last day judged
    baseline: float | None
    observed: float | None
    unit: str
    reason: str
    samples: int
    key: str = ""  # distinguishes two findings of one rule on one device (the error code)
    severity: str = "warning"
    open_work_order: bool = False


@dataclass(frozen=True, slots=True)
class Fleet:
    """What the rules compare a device with: its peers of the same device type."""

    alarm_rates: dict[str, list[float]] = field(default_factory=dict)  # type -> per-device rates
    alarm_changes: dict[str, list[float]] = field(default_factory=dict)  # type -> recent / usual rate


def robust(values: list[float]) -> tuple[float, float]:
    """(median, MAD x 1.4826) of `values`."""
    mid = median(values)
    return mid, MAD_SCALE * median(abs(v - mid) for v in values)


def theil_sen(points: list[tuple[float, float]]) -> float | None:
    """The median of pairwise slopes (Theil-Sen): a trend that a few outliers do not move."""
    slopes = [
        (y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1 :] if x2 != x1
    ]
    return median(slopes) if slopes else None
