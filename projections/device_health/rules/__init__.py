"""Device-health rules: pure functions over a device's daily history and its fleet."""

from projections.device_health.rules.config import RuleSet, load_rule_set
from projections.device_health.rules.judge import alarm_rate, evaluate, fleet_of
from projections.device_health.rules.model import Day, Device, Finding, Fleet

__all__ = [
    "Day",
    "Device",
    "Finding",
    "Fleet",
    "RuleSet",
    "alarm_rate",
    "evaluate",
    "fleet_of",
    "load_rule_set",
]
