"""What is due, how often, for which devices: the configuration of the `compliance` projection.

Knobs (ComplianceConfig; the lead wires hub settings to it):

- `rules`: a list of ComplianceRule {kind, interval_months, category_prefix | name_contains}.
  A rule matches an asset whose category code starts with `category_prefix`, or whose category
  name or device name contains `name_contains`. Several rules may match one asset (one per kind
  or more); for each kind the shortest interval wins. The defaults cover the national 68-class
  codes of the sample ledgers (6854 ventilators/pumps/defibrillators, 6821 monitors, 6823
  ultrasound, 6845 dialysis: calibration 12 months, preventive maintenance 6, electrical safety
  12; X-ray, lab analysers, imaging and ward equipment below), and device names for sources
  that send no category code.
- `due_within_days` (30): `compliance.due` is concluded this many days before the due date.
- `schedule_kinds` (preventive maintenance, calibration): kinds for which a
  `workorder.scheduled` task is generated when the due window opens.
- `projected_bases` (commissioned, accepted, acquired, unknown): a periodic obligation dated from
  one of these starts of service, with no calibration or inspection of its kind on record, is
  projected: listed with `projected: true`, never notified, until a real record confirms it (so a
  first import of a legacy ledger states no per-asset overdue notices for dates the hub only
  estimated from purchase dates). A site that trusts its acceptance or commissioning forms as a
  schedule's start removes `accepted` / `commissioned`.
- `timezone` (Asia/Shanghai): due dates are calendar days of the site; the clock's `now` is
  turned into the site's date before comparing.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

IntervalKind = Literal["preventive_maintenance", "calibration", "electrical_safety"]
INTERVAL_KINDS: tuple[IntervalKind, ...] = ("preventive_maintenance", "calibration", "electrical_safety")


@dataclass(frozen=True, slots=True)
class ComplianceRule:
    """One periodic obligation for a class of devices."""

    kind: IntervalKind
    interval_months: int
    category_prefix: str | None = None
    name_contains: str | None = None

    def __post_init__(self) -> None:
        if self.interval_months < 1:
            raise ValueError("a compliance interval is at least one month")
        if (self.category_prefix is None) == (self.name_contains is None):
            raise ValueError("a compliance rule matches by category_prefix or by name_contains (one of them)")

    def matches(self, category_code: str | None, category_name: str | None, name: str | None) -> bool:
        if self.category_prefix is not None:
            return category_code is not None and category_code.startswith(self.category_prefix)
        needle = self.name_contains or ""
        return any(text is not None and needle in text for text in (category_name, name))


def _every(
    matcher: dict[str, str], calibration: int | None, maintenance: int | None, safety: int | None
) -> list[ComplianceRule]:
    pairs: list[tuple[IntervalKind, int | None]] = [
        ("calibration", calibration),
        ("preventive_maintenance", maintenance),
        ("electrical_safety", safety),
    ]
    return [ComplianceRule(kind, months, **matcher) for kind, months in pairs if months is not None]


def _defaults() -> tuple[ComplianceRule, ...]:
    rules: list[ComplianceRule] = []
    # Life support and patient-connected electrical devices: metrology yearly, PM twice a year.
    for code in ("6854", "6821", "6823", "6845"):
        rules += _every({"category_prefix": code}, 12, 6, 12)
    rules += _every({"category_prefix": "6830"}, 12, 6, 12)  # X-ray: dose metrology + PM
    rules += _every({"category_prefix": "6840"}, 12, 6, None)  # lab analysers: no patient contact
    for code in ("6828", "6833"):  # MRI, nuclear medicine
        rules += _every({"category_prefix": code}, None, 6, 12)
    rules += _every({"category_prefix": "6856"}, None, 12, None)  # ward care equipment
    for name in ("呼吸机", "监护仪", "输液泵", "注射泵", "除颤", "透析", "麻醉机"):
        rules += _every({"name_contains": name}, 12, 6, 12)
    return tuple(rules)


DEFAULT_RULES: tuple[ComplianceRule, ...] = _defaults()


@dataclass(frozen=True, slots=True)
class ComplianceConfig:
    """Configuration of the `compliance` projection (see the module docstring)."""

    rules: tuple[ComplianceRule, ...] = field(default_factory=lambda: DEFAULT_RULES)
    due_within_days: int = 30
    schedule_kinds: frozenset[str] = frozenset({"preventive_maintenance", "calibration"})
    timezone: str = "Asia/Shanghai"
    projected_bases: frozenset[str] = frozenset({"commissioned", "accepted", "acquired", "unknown"})
    # (category code, category name, name) -> intervals, for this config's rules. Per instance, not
    # an lru_cache over the rules: hashing the tuple of ~40 rules on every call (once per asset
    # per batch) cost more than the matching it saved.
    _memo: dict[tuple[str | None, str | None, str | None], Mapping[IntervalKind, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.due_within_days < 0:
            raise ValueError("due_within_days cannot be negative")
        ZoneInfo(self.timezone)  # fail at start-up, not at the first tick

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def intervals(
        self, category_code: str | None, category_name: str | None, name: str | None
    ) -> Mapping[IntervalKind, int]:
        """Interval in months per kind for an asset: the shortest of the rules that match it."""
        key = (category_code, category_name, name)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= _INTERVALS_KEPT:
                self._memo.clear()
            found = self._memo[key] = _intervals(self.rules, category_code, category_name, name)
        return found


_INTERVALS_KEPT = 4096  # a hospital has a few hundred (class, device name) pairs, not 10^5


def _intervals(
    rules: tuple[ComplianceRule, ...], category_code: str | None, category_name: str | None, name: str | None
) -> Mapping[IntervalKind, int]:
    out: dict[IntervalKind, int] = {}
    for rule in rules:
        if rule.matches(category_code, category_name, name):
            out[rule.kind] = min(out.get(rule.kind, rule.interval_months), rule.interval_months)
    return MappingProxyType(out)


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the month's end (31 Jan + 1 month = 29 Feb in a leap year)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
