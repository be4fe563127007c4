"""The v1 event catalogue: one discriminated union over `type`, and the (de)serialisers.

Readers call `parse_event(bytes)`: JSON -> upcast to the newest version -> validated model.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, TypeAdapter

from schemas.assets import (
    ASSET_EVENTS,
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetDetailsCorrected,
    AssetIdentifierLinked,
    AssetInspected,
    AssetLoanCorrected,
    AssetLoaned,
    AssetRegistered,
    AssetRelocated,
    AssetReturned,
    AssetStatusChanged,
    AssetUsageCorrected,
    AssetUsed,
    AssetValuationUpdated,
)
from schemas.audit import AUDIT_EVENTS, AccessRecorded
from schemas.derived import (
    DERIVED_EVENTS,
    AssetIdentityConflict,
    ComplianceDue,
    ComplianceOverdue,
    InventoryBelowMinimum,
    InventoryReorderRequested,
    WorkOrderScheduled,
    WorkOrderSlaBreached,
)
from schemas.facility import (
    DERIVED_FACILITY_EVENTS,
    FACILITY_EVENTS,
    FacilityAnomalyCleared,
    FacilityAnomalyDetected,
    FacilityMeterRead,
    FacilityMeterReadingsRecorded,
)
from schemas.inventory import (
    INVENTORY_EVENTS,
    InventoryAdjusted,
    InventoryConsumed,
    InventoryConsumptionCorrected,
    InventoryDisposed,
    InventoryItemDefined,
    InventoryReceived,
    InventoryThresholdSet,
    InventoryTransferred,
)
from schemas.notifications import (
    DERIVED_NOTIFICATION_EVENTS,
    NOTIFICATION_EVENTS,
    NotificationDelivered,
    NotificationEscalated,
    NotificationExpired,
    NotificationRead,
    NotificationSent,
)
from schemas.ops import OPS_EVENTS, OpsAlertCleared, OpsAlertRaised
from schemas.telemetry import (
    DERIVED_TELEMETRY_EVENTS,
    TELEMETRY_EVENTS,
    AssetEarlyWarning,
    AssetEarlyWarningCleared,
    AssetTelemetryRecorded,
)
from schemas.upcasters import upcast
from schemas.work_orders import (
    WORK_ORDER_EVENTS,
    WorkOrderApproved,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderCompleted,
    WorkOrderOnHold,
    WorkOrderRejected,
    WorkOrderReportAdded,
    WorkOrderRequestCorrected,
    WorkOrderRequested,
    WorkOrderStarted,
)

if TYPE_CHECKING:
    from schemas.envelope import EventBase

Event = Annotated[
    AssetRegistered
    | AssetDetailsCorrected
    | AssetIdentifierLinked
    | AssetAccepted
    | AssetCommissioned
    | AssetRelocated
    | AssetStatusChanged
    | AssetLoaned
    | AssetLoanCorrected
    | AssetReturned
    | AssetCalibrated
    | AssetInspected
    | AssetContractRegistered
    | AssetUsed
    | AssetUsageCorrected
    | AssetValuationUpdated
    | AssetDecommissioned
    | InventoryItemDefined
    | InventoryThresholdSet
    | InventoryReceived
    | InventoryTransferred
    | InventoryConsumed
    | InventoryConsumptionCorrected
    | InventoryAdjusted
    | InventoryDisposed
    | WorkOrderRequested
    | WorkOrderApproved
    | WorkOrderRejected
    | WorkOrderAssigned
    | WorkOrderStarted
    | WorkOrderOnHold
    | WorkOrderCompleted
    | WorkOrderClosed
    | WorkOrderCancelled
    | WorkOrderReportAdded
    | WorkOrderRequestCorrected
    | InventoryBelowMinimum
    | InventoryReorderRequested
    | ComplianceDue
    | ComplianceOverdue
    | WorkOrderScheduled
    | WorkOrderSlaBreached
    | AssetIdentityConflict
    | AccessRecorded
    | NotificationSent
    | NotificationEscalated
    | NotificationExpired
    | NotificationDelivered
    | NotificationRead
    | OpsAlertRaised
    | OpsAlertCleared
    | FacilityMeterRead
    | FacilityMeterReadingsRecorded
    | FacilityAnomalyDetected
    | FacilityAnomalyCleared
    | AssetTelemetryRecorded
    | AssetEarlyWarning
    | AssetEarlyWarningCleared,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

ALL_EVENT_CLASSES: tuple[type[EventBase], ...] = (
    *ASSET_EVENTS,
    *INVENTORY_EVENTS,
    *WORK_ORDER_EVENTS,
    *DERIVED_EVENTS,
    *AUDIT_EVENTS,
    *DERIVED_NOTIFICATION_EVENTS,
    *NOTIFICATION_EVENTS,
    *OPS_EVENTS,
    *FACILITY_EVENTS,
    *DERIVED_FACILITY_EVENTS,
    *TELEMETRY_EVENTS,
    *DERIVED_TELEMETRY_EVENTS,
)
EVENT_CLASSES: dict[str, type[EventBase]] = {
    cls.model_fields["type"].default: cls for cls in ALL_EVENT_CLASSES
}
DERIVED_TYPES: frozenset[str] = frozenset(
    cls.model_fields["type"].default
    for cls in (
        *DERIVED_EVENTS,
        *DERIVED_NOTIFICATION_EVENTS,
        *OPS_EVENTS,
        *DERIVED_FACILITY_EVENTS,
        *DERIVED_TELEMETRY_EVENTS,
    )
)


def latest_version(event_type: str) -> int:
    """The schema version writers emit today for `event_type`."""
    return int(EVENT_CLASSES[event_type].model_fields["schema_version"].default)


def parse_event(data: bytes | str | dict[str, Any]) -> Event:
    """Decode one stored event (any version with an upcaster path) into the current model.

    Raises pydantic.ValidationError, or ValueError (incl. json.JSONDecodeError) for a payload
    that is not an event: consumers treat both as poison.
    """
    raw = json.loads(data) if isinstance(data, bytes | str) else data
    if not isinstance(raw, dict) or not isinstance(raw.get("payload"), dict):
        msg = "not an event: expected a JSON object with a `payload` object"
        raise ValueError(msg)  # noqa: TRY004  (JSONDecodeError is a ValueError too: one type for poison)
    return EVENT_ADAPTER.validate_python(upcast(dict(raw)))


def dump_event(event: EventBase) -> bytes:
    """Canonical JSON bytes of an event (aliases on, so `from` stays `from` on the wire)."""
    return event.model_dump_json(by_alias=True).encode()
