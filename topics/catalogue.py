"""Topic catalogue: every topic the hub writes, its key, partitions, retention and event types."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas._base import SourceSystem
from schemas.catalogue import EVENT_CLASSES

FOREVER = -1


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic. `name` is without the deployment prefix; `full_name(prefix)` adds it."""

    name: str
    key: str
    partitions: int
    retention_ms: int = FOREVER
    compacted: bool = False
    event_types: frozenset[str] = field(default_factory=frozenset)
    description: str = ""

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def configs(self) -> dict[str, str]:
        """Broker-side topic configs (Kafka names)."""
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
        }


def _types(prefix: str) -> frozenset[str]:
    return frozenset(t for t in EVENT_CLASSES if t.startswith(prefix))


# Derived types that live on derived.* topics, by domain of the topic.
_DERIVED_TOPIC_OF_TYPE: dict[str, str] = {
    "inventory.below_minimum": "derived.inventory.v1",
    "inventory.reorder_requested": "derived.inventory.v1",
    "compliance.due": "derived.compliance.v1",
    "compliance.overdue": "derived.compliance.v1",
    "workorder.scheduled": "derived.workorder.v1",
    "workorder.sla_breached": "derived.workorder.v1",
    "asset.identity_conflict": "derived.asset.v1",
    "notification.sent": "derived.notification.v1",
    "notification.escalated": "derived.notification.v1",
    "notification.expired": "derived.notification.v1",
    "notification.delivered": "derived.notification.v1",
    "ops.alert_raised": "derived.ops.v1",
    "ops.alert_cleared": "derived.ops.v1",
    "facility.anomaly_detected": "derived.facility.v1",
    "facility.anomaly_cleared": "derived.facility.v1",
    "asset.early_warning": "derived.asset.v1",
    "asset.early_warning_cleared": "derived.asset.v1",
}


def _derived(name: str) -> frozenset[str]:
    return frozenset(t for t, n in _DERIVED_TOPIC_OF_TYPE.items() if n == name)


CANONICAL_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "canonical.asset.v1",
        key="asset id",
        partitions=6,
        event_types=_types("asset.") - set(_DERIVED_TOPIC_OF_TYPE),
        description=(
            "Facts about devices: registration, identity, location, status, loans, metrology, telemetry."
        ),
    ),
    TopicSpec(
        "canonical.inventory.v1",
        key="item id",
        partitions=6,
        event_types=_types("inventory.") - set(_DERIVED_TOPIC_OF_TYPE),
        description="Consumables: definitions, thresholds, receipts, transfers, consumption, stocktakes.",
    ),
    TopicSpec(
        "canonical.workorder.v1",
        key="work-order id",
        partitions=6,
        event_types=_types("workorder.") - set(_DERIVED_TOPIC_OF_TYPE),
        description="Repair and maintenance jobs from request to closure.",
    ),
    TopicSpec(
        "canonical.notification.v1",
        key="notification id",
        partitions=3,
        event_types=_types("notification.") - set(_DERIVED_TOPIC_OF_TYPE),
        description="Read receipts: who acknowledged a notification, and when.",
    ),
    TopicSpec(
        "canonical.facility.v1",
        key="meter id",
        partitions=6,
        event_types=_types("facility.") - set(_DERIVED_TOPIC_OF_TYPE),
        description="Building sub-meter readings: energy, water, gas, zone temperatures, valves.",
    ),
)

DERIVED_TOPICS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(name, key=key, partitions=3, event_types=_derived(name), description=desc)
    for name, key, desc in (
        ("derived.asset.v1", "asset id", "Identity conflicts; early warnings from device telemetry."),
        ("derived.inventory.v1", "item id", "Below-minimum alerts and reorder requests."),
        ("derived.compliance.v1", "asset id", "Calibration, inspection and contract due/overdue."),
        ("derived.workorder.v1", "work-order id", "Scheduled maintenance and SLA breaches."),
        ("derived.notification.v1", "notification id", "Notifications sent, escalated, expired, delivered."),
        ("derived.ops.v1", "alert id", "Operational alerts raised and cleared (silent channels, lag, disk)."),
        (
            "derived.facility.v1",
            "meter or zone id",
            "Energy anomalies (leaks, surges, stuck meters...) and their end.",
        ),
    )
)

AUDIT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "audit.access.v1",
        key="API key id",
        partitions=1,  # one chain, in the order the API recorded the reads
        event_types=_types("audit."),
        description="Sensitive reads through the API (raw messages, history, traces): who, what, when.",
    ),
)

RAW_TOPICS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(
        f"raw.{s.value}.v1",
        key="source message id",
        partitions=3,
        description=f"Every inbound {s.value.upper()} message, as archived (reference + metadata).",
    )
    for s in SourceSystem
    if s is not SourceSystem.HUB
)

DLQ_TOPICS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(
        f"dlq.{s.value}.v1",
        key="source message id",
        partitions=1,
        description=f"{s.value.upper()} input that could not be translated, with the reason and location.",
    )
    for s in SourceSystem
)

CATALOGUE: tuple[TopicSpec, ...] = (
    *RAW_TOPICS,
    *CANONICAL_TOPICS,
    *DERIVED_TOPICS,
    *AUDIT_TOPICS,
    *DLQ_TOPICS,
)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in CATALOGUE}


def topic_for_event_type(event_type: str) -> TopicSpec:
    """The one topic an event type is published to (without prefix)."""
    for spec in (*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS):
        if event_type in spec.event_types:
            return spec
    raise KeyError(f"no topic carries event type {event_type!r}")


def raw_topic(system: SourceSystem | str) -> TopicSpec:
    return BY_NAME[f"raw.{SourceSystem(system).value}.v1"]


def dlq_topic(system: SourceSystem | str) -> TopicSpec:
    return BY_NAME[f"dlq.{SourceSystem(system).value}.v1"]
