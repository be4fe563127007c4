"""The four rules, pure: a device's days (and its fleet) as of a day -> findings with evidence.

- battery (`battery-fade`): the Theil-Sen slope of full-charge capacity over the window is
  steeper than the allowed fade, or the latest capacity is below the minimum;
- errors (`error-recurrence`): one error code reported on `min_days` distinct days of the window
  (one code a day is noise, the same code day after day is a part failing);
- usage (`pm-overdue`): operating hours since the last preventive maintenance on record (the
  counter's increase since that day) above the type's PM interval. No PM on record: no judgement;
- alarms (`alarm-rate`): alarms per day over the window against the devices of the same type:
  robust z (median/MAD) above `z`, at least `ratio` x the fleet median and `min_alarms_per_day`.

Every finding says why in words, with the figures it compared.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING

from projections.device_health.rules.model import Day, Device, Finding, Fleet, robust, theil_sen

if TYPE_CHECKING:
    from projections.device_health.rules.config import (
        AlarmRule,
        BatteryRule,
        ErrorRule,
        RuleSet,
        UsageRule,
    )


def evaluate(device: Device, fleet: Fleet, rules: RuleSet, today: date) -> list[Finding]:
    """Every rule of the device's category that fires as of `today` (days after it are ignored)."""
    chosen = rules.for_type(device.device_type)
    days = [d for d in device.days if d.day <= today]
    if not days:
        return []
    out: list[Finding] = []
    if chosen.battery.enabled:
        out += battery(device, days, chosen.battery, today)
    if chosen.errors.enabled:
        out += errors(device, days, chosen.errors, today)
    if chosen.usage.enabled:
        out += usage(device, days, chosen.usage, today)
    if chosen.alarms.enabled:
        out += alarms(device, days, fleet, chosen.alarms, today)
    return out


def battery(device: Device, days: list[Day], rule: BatteryRule, today: date) -> list[Finding]:
    start = today - timedelta(days=rule.window_days - 1)
    points = [
        ((d.day - start).days, d.battery_pct) for d in days if d.day >= start and d.battery_pct is not None
    ]
    if len(points) < rule.min_samples:
        return []
    slope = theil_sen([(float(x), float(y)) for x, y in points])
    latest = float(points[-1][1])
    found = []
    if slope is not None and -slope > rule.max_fade_per_day:
        found.append(
            Finding(
                "battery-fade",
                "battery",
                device.subject,
                start,
                today,
                -rule.max_fade_per_day,
                slope,
                "%/day",
                f"battery capacity falls {-slope:.2f} points a day over {rule.window_days} days "
                f"(Theil-Sen over {len(points)} readings; allowed {rule.max_fade_per_day:.2f}); "
                f"now {latest:.1f} %",
                len(points),
                open_work_order=rule.open_work_order,
            )
        )
    elif latest < rule.min_pct:
        found.append(
            Finding(
                "battery-low",
                "battery",
                device.subject,
                start,
                today,
                rule.min_pct,
                latest,
                "%",
                f"battery full-charge capacity {latest:.1f} % is below the {rule.min_pct:.0f} % minimum",
                len(points),
                open_work_order=rule.open_work_order,
            )
        )
    return found


def errors(device: Device, days: list[Day], rule: ErrorRule, today: date) -> list[Finding]:
    start = today - timedelta(days=rule.window_days - 1)
    seen: Counter[str] = Counter()
    first: dict[str, date] = {}
    for d in days:
        if d.day < start:
            continue
        for code in set(d.errors):
            seen[code] += 1
            first.setdefault(code, d.day)
    return [
        Finding(
            "error-recurrence",
            "errors",
            device.subject,
            first[code],
            today,
            float(rule.min_days),
            float(n),
            "days",
            f"error {code} reported on {n} days of the last {rule.window_days} (threshold {rule.min_days})",
            n,
            key=code,
            open_work_order=rule.open_work_order,
        )
        for code, n in sorted(seen.items())
        if n >= rule.min_days
    ]


def usage(device: Device, days: list[Day], rule: UsageRule, today: date) -> list[Finding]:
    if device.last_pm is None:
        return []
    counted = [d for d in days if d.usage_hours is not None]
    if len(counted) < 2:
        return []
    last = counted[-1]
    before = [d for d in counted if d.day <= device.last_pm]
    if before:  # the counter on the PM day is known: count from it
        since = (last.usage_hours or 0.0) - (before[-1].usage_hours or 0.0)
        how = "counted"
    else:  # the PM predates the history: its hours at the device's mean daily use, then counted
        first = counted[0]
        span = max((last.day - first.day).days, 1)
        per_day = ((last.usage_hours or 0.0) - (first.usage_hours or 0.0)) / span
        since = (
            (last.usage_hours or 0.0)
            - (first.usage_hours or 0.0)
            + per_day * (first.day - device.last_pm).days
        )
        how = f"estimated at {per_day:.1f} h/day before {first.day}"
    if since <= rule.pm_interval_hours:
        return []
    return [
        Finding(
            "pm-overdue",
            "usage",
            device.subject,
            device.last_pm,
            today,
            rule.pm_interval_hours,
            since,
            "h",
            f"{since:.0f} operating hours since the last preventive maintenance on {device.last_pm} "
            f"({how}; interval {rule.pm_interval_hours:.0f} h)",
            len(counted),
            open_work_order=rule.open_work_order,
        )
    ]


def alarm_rate(days: list[Day], today: date, window_days: int, *, before: int = 0) -> float | None:
    """Alarms per reporting day over the `window_days` ending `before` days ahead of `today`."""
    end = today - timedelta(days=before)
    start = end - timedelta(days=window_days - 1)
    window = [d for d in days if start <= d.day <= end]
    return sum(d.alarms for d in window) / len(window) if window else None


def alarm_change(days: list[Day], today: date, rule: AlarmRule) -> float | None:
    """The window's alarm rate over the device's own rate in the `baseline_days` before it."""
    recent = alarm_rate(days, today, rule.window_days)
    usual = alarm_rate(days, today, rule.baseline_days, before=rule.window_days)
    if recent is None or usual is None:
        return None
    return recent / max(usual, rule.floor_per_day)


def alarms(device: Device, days: list[Day], fleet: Fleet, rule: AlarmRule, today: date) -> list[Finding]:
    """Against the fleet twice: the device's rate among its peers' rates, and its change on its own
    usual rate among its peers' changes (a quiet device whose alarms quadruple stands out there)."""
    rate = alarm_rate(days, today, rule.window_days)
    if rate is None or rate < rule.min_alarms_per_day:
        return []
    start = today - timedelta(days=rule.window_days - 1)
    peers = fleet.alarm_rates.get(device.device_type, [])
    if len(peers) >= rule.min_fleet:
        mid, spread = robust(peers)
        z = _z(rate, mid, spread)
        if z >= rule.z and rate >= rule.ratio * mid:
            return [
                Finding(
                    "alarm-rate",
                    "alarms",
                    device.subject,
                    start,
                    today,
                    mid,
                    rate,
                    "alarms/day",
                    f"{rate:.1f} alarms a day over {rule.window_days} days against a fleet median of "
                    f"{mid:.1f} "
                    f"({len(peers)} devices of this type; robust z {z:.1f})",
                    len(peers),
                    open_work_order=rule.open_work_order,
                )
            ]
    change = alarm_change(days, today, rule)
    changes = fleet.alarm_changes.get(device.device_type, [])
    if change is None or len(changes) < rule.min_fleet:
        return []
    mid, spread = robust(changes)
    z = _z(change, mid, spread)
    if z < rule.z or change < rule.ratio * mid:
        return []
    return [
        Finding(
            "alarm-rate",
            "alarms",
            device.subject,
            start,
            today,
            mid,
            change,
            "x own rate",
            f"{rate:.1f} alarms a day over {rule.window_days} days is {change:.1f}x this device's rate "
            "of the "
            f"{rule.baseline_days} days before, while the fleet changed {mid:.2f}x ({len(changes)} devices; "
            f"robust z {z:.1f})",
            len(changes),
            open_work_order=rule.open_work_order,
        )
    ]


def _z(value: float, mid: float, spread: float) -> float:
    if spread > 0:
        return (value - mid) / spread
    return float("inf") if value > mid else 0.0


def fleet_of(devices: list[Device], rules: RuleSet, today: date) -> Fleet:
    """Each device type's alarm rates and changes as of `today` (what `alarms` compares with)."""
    rates: dict[str, list[float]] = {}
    changes: dict[str, list[float]] = {}
    for device in devices:
        rule = rules.for_type(device.device_type).alarms
        days = list(device.days)
        rate = alarm_rate(days, today, rule.window_days)
        if rate is not None:
            rates.setdefault(device.device_type, []).append(rate)
        change = alarm_change(days, today, rule)
        if change is not None:
            changes.setdefault(device.device_type, []).append(change)
    return Fleet(alarm_rates=rates, alarm_changes=changes)
