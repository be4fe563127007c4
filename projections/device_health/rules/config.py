"""The per-category rule set, from YAML (`HUB_DEVICE_RULES`, else the bundled `default_rules.yaml`).

```yaml
categories:                       # device type (MDC_DEV_... or the vendor's model) -> thresholds
  default: {battery: {...}, errors: {...}, usage: {...}, alarms: {...}}
  MDC_DEV_SYS_PT_VENT_MDS: {usage: {pm_interval_hours: 2000}}   # merged over `default`
```
A category lists only what differs from `default`; `enabled: false` turns a rule off for it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "default_rules.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BatteryRule(_Model):
    """Capacity fading faster than `max_fade_per_day` (Theil-Sen over `window_days`), or below `min_pct`."""

    enabled: bool = True
    window_days: int = Field(default=30, ge=3)
    min_samples: int = Field(default=10, ge=3)
    max_fade_per_day: float = Field(default=0.15, gt=0)  # capacity points per day
    min_pct: float = Field(default=70.0, ge=0)
    open_work_order: bool = False


class ErrorRule(_Model):
    """One error code reported on at least `min_days` distinct days within `window_days`."""

    enabled: bool = True
    window_days: int = Field(default=14, ge=1)
    min_days: int = Field(default=3, ge=2)
    open_work_order: bool = True


class UsageRule(_Model):
    """Operating hours since the last preventive maintenance above `pm_interval_hours`."""

    enabled: bool = True
    pm_interval_hours: float = Field(default=2000.0, gt=0)
    open_work_order: bool = True


class AlarmRule(_Model):
    """Alarms per day over `window_days` far above the fleet of the same type (robust z and ratio),
    or far above the device's own usual rate when its peers' rates did not change so."""

    enabled: bool = True
    window_days: int = Field(default=5, ge=1)
    baseline_days: int = Field(default=28, ge=3)  # the device's own usual rate, before the window
    floor_per_day: float = Field(default=0.5, gt=0)  # a silent device's usual rate counts as this
    min_fleet: int = Field(default=5, ge=3)  # fewer peers than this: no judgement
    z: float = Field(default=4.0, gt=0)
    ratio: float = Field(default=2.0, ge=1)
    min_alarms_per_day: float = Field(default=3.0, ge=0)
    open_work_order: bool = False


class CategoryRules(_Model):
    battery: BatteryRule = Field(default_factory=BatteryRule)
    errors: ErrorRule = Field(default_factory=ErrorRule)
    usage: UsageRule = Field(default_factory=UsageRule)
    alarms: AlarmRule = Field(default_factory=AlarmRule)


class RuleSet(_Model):
    """Rules by device type (a glob over MDC_DEV_... or a model name); `default` for the rest."""

    categories: dict[str, CategoryRules] = Field(default_factory=lambda: {"default": CategoryRules()})

    def for_type(self, device_type: str) -> CategoryRules:
        if device_type in self.categories:
            return self.categories[device_type]
        for pattern, rules in self.categories.items():
            if pattern != "default" and fnmatchcase(device_type, pattern):
                return rules
        return self.categories.get("default", CategoryRules())


def load_rule_set(path: Path | None = None) -> RuleSet:
    """The rule set in `path` (each category merged over `default`, rule by rule)."""
    data: Any = yaml.safe_load((path or DEFAULT_RULES).read_text(encoding="utf-8")) or {}
    raw = dict(data.get("categories") or {})
    base = raw.get("default") or {}
    merged: dict[str, Any] = {}
    for name, rules in raw.items():
        body: dict[str, Any] = {k: dict(v or {}) for k, v in base.items()}
        for rule, values in (rules or {}).items():
            body[rule] = {**body.get(rule, {}), **(values or {})}
        merged[str(name)] = body
    return RuleSet.model_validate({"categories": merged or {"default": {}}})
