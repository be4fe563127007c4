"""Corrections of noted units: a retry that fills in what a first translation left unknown.

A unit kept with a field unknown (a `Translation.notes` entry, e.g. a ward code the mapping did
not know) was published as it read then. Its events of a correctable type are remembered (event
id -> payload) when first published. When a later translation of the same message (`hub dlq
retry` after a mapping fix) gives such an event another payload, the event is not published
again under its id (the log keeps the original, immutable); its correction event is published
instead, carrying the corrected payload, the payload it corrects (`previous`) and `corrects`:
the original's id. Read models undo the original and apply the corrected payload, so they read
as if the mapping had been right from the start, and nothing is applied twice.

Correctable types and their corrections: `inventory.consumed` -> `inventory.consumption_corrected`,
`asset.used` -> `asset.usage_corrected`, `asset.loaned` -> `asset.loan_corrected`,
`workorder.requested` -> `workorder.request_corrected`. Other event types of a noted unit are
republished under their id (projections keep the first copy), so an adapter keeps a unit with
a department unknown only when a retry can correct it (HRP ledger rows are corrected by the
snapshot differ, hub.translation.snapshots; SPD receipts, transfers... fail instead).

Correction ids are uuid5 over the original's id and the corrected content, so a crash and a
re-run publish the same id. The correction keeps the original's business time (`occurred_at`)
and is recorded when the hub learned it (`recorded_at`: now), so an as-of query before the
retry still sees the original.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from schemas.assets import (
    AssetLoanCorrected,
    AssetLoaned,
    AssetUsageCorrected,
    AssetUsed,
    LoanCorrectedPayload,
    LoanedPayload,
    UsageCorrectedPayload,
    UsedPayload,
)
from schemas.ids import event_id_for
from schemas.inventory import (
    ConsumedPayload,
    ConsumptionCorrectedPayload,
    InventoryConsumed,
    InventoryConsumptionCorrected,
)
from schemas.work_orders import (
    RequestCorrectedPayload,
    RequestedPayload,
    WorkOrderRequestCorrected,
    WorkOrderRequested,
)

if TYPE_CHECKING:
    from adapters.base import Emitted, Failure
    from schemas.envelope import EventBase

CORRECTABLE = frozenset({"inventory.consumed", "asset.used", "asset.loaned", "workorder.requested"})


def noted_event_ids(events: tuple[Emitted, ...], notes: tuple[Failure, ...]) -> set[str]:
    """Ids of the events of units that carry a note (note positions are `<unit position>#<field>`)."""
    if not notes:
        return set()
    units = {n.position.rsplit("#", 1)[0] for n in notes}
    return {str(e.event.event_id) for e in events if e.position in units and e.event.type in CORRECTABLE}


def correction(event: EventBase, previous: dict[str, Any], digest: str) -> EventBase:
    """The correction of `event` (published before with payload `previous`) to its current payload."""
    original = str(event.event_id)
    base = event.model_dump(exclude={"event_id", "type", "schema_version", "payload", "recorded_at"})
    common: dict[str, Any] = {
        **base,
        "event_id": event_id_for(event.source.system.value, f"correct:{original}", digest),
        "recorded_at": datetime.now(UTC),
        "causation_id": original,
    }
    if isinstance(event, InventoryConsumed):
        return InventoryConsumptionCorrected(
            **common,
            payload=ConsumptionCorrectedPayload(
                corrects=event.event_id,
                consumption=event.payload,
                previous=ConsumedPayload.model_validate(previous),
            ),
        )
    if isinstance(event, AssetUsed):
        return AssetUsageCorrected(
            **common,
            payload=UsageCorrectedPayload(
                corrects=event.event_id, usage=event.payload, previous=UsedPayload.model_validate(previous)
            ),
        )
    if isinstance(event, AssetLoaned):
        return AssetLoanCorrected(
            **common,
            payload=LoanCorrectedPayload(
                corrects=event.event_id, loan=event.payload, previous=LoanedPayload.model_validate(previous)
            ),
        )
    if isinstance(event, WorkOrderRequested):
        return WorkOrderRequestCorrected(
            **common,
            payload=RequestCorrectedPayload(
                corrects=event.event_id,
                request=event.payload,
                previous=RequestedPayload.model_validate(previous),
            ),
        )
    msg = f"{event.type} has no correction event"
    raise TypeError(msg)
