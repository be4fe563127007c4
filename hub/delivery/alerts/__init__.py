"""Operational alerts: YAML rules (rules), what they measure (probes), alerts at rest (book), and
the service `hub serve` runs that raises and clears them as `ops.alert_raised` /
`ops.alert_cleared` events on `derived.ops.v1` (evaluator). `GET /alerts` and the console's
Alerts view read the book; SSE, webhooks and notification rules take the events like any other.
"""

from hub.delivery.alerts.book import Alert, AlertBook
from hub.delivery.alerts.evaluator import AlertService, Verdict
from hub.delivery.alerts.probes import ArchiveProbe, Probes
from hub.delivery.alerts.rules import AlertRule, load_rules, parse_rules

__all__ = [
    "Alert",
    "AlertBook",
    "AlertRule",
    "AlertService",
    "ArchiveProbe",
    "Probes",
    "Verdict",
    "load_rules",
    "parse_rules",
]
