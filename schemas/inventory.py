"""Inventory domain: consumables from definition to the bedside. Subject = hub item id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import Field

from schemas._base import HubModel, LocationRef, Money, NonEmptyStr
from schemas.envelope import EventBase


class Barcode(HubModel):
    """A scanned code as read, with what GS1 parsing found in it. Unparsed codes keep `raw` only."""

    raw: NonEmptyStr
    symbology: Literal["gs1", "gs1_digital_link", "hibcc", "unknown"] = "unknown"
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    parse_error: str | None = None


class ItemDefinedPayload(HubModel):
    item_code: NonEmptyStr
    name: NonEmptyStr
    spec: str | None = None
    unit: str | None = None
    gtin: str | None = None
    udi_di: str | None = None
    high_value: bool = False
    category: str | None = None
    supplier: str | None = None
    price: Money | None = None


class ThresholdSetPayload(HubModel):
    location: LocationRef
    minimum: Decimal = Field(ge=0)
    maximum: Decimal = Field(ge=0)
    reorder_point: Decimal | None = None


class MovementItem(HubModel):
    """The item's own code and name as the movement's source wrote them (optional, additive).

    A read model that has no definition of the item yet defines it from these, flagged as
    provisional until an item master defines it: the subject (hub item id) stays the key.
    """

    item_code: str | None = None
    item_name: str | None = None


class ReceivedPayload(MovementItem):
    location: LocationRef
    quantity: Decimal = Field(gt=0)
    lot: str | None = None
    expiry: date | None = None
    serials: list[str] = Field(default_factory=list)
    supplier: str | None = None
    po_number: str | None = None
    unit_cost: Money | None = None
    barcode: Barcode | None = None


class TransferredPayload(MovementItem):
    from_location: LocationRef
    to_location: LocationRef
    quantity: Decimal = Field(gt=0)
    lot: str | None = None
    serials: list[str] = Field(default_factory=list)
    document_no: str | None = None


class ConsumedPayload(MovementItem):
    location: LocationRef
    quantity: Decimal = Field(gt=0)
    lot: str | None = None
    serial: str | None = None
    udi: str | None = None
    barcode: Barcode | None = None
    patient_token: str | None = None
    procedure_code: str | None = None
    charge_id: str | None = None
    # The item as the consuming system coded and named it (HIS FT1-7 `HC0031^冠状动脉药物洗脱支架系统`):
    # the inventory read model defines an item no item master has defined from it (provisional).
    item_code: str | None = None
    item_name: str | None = None


class ConsumptionCorrectedPayload(HubModel):
    """The consumption `corrects` names, as it should have read (a retry after a mapping fix found
    the place the first translation left unknown). `previous` is what was published: read models
    undo it and apply `consumption` instead, so the stock is counted once, at the right place."""

    corrects: UUID
    consumption: ConsumedPayload
    previous: ConsumedPayload


class AdjustedPayload(MovementItem):
    location: LocationRef
    lot: str | None = None
    counted_quantity: Decimal = Field(ge=0)
    book_quantity: Decimal | None = None
    reason: str | None = None


class DisposedPayload(MovementItem):
    location: LocationRef
    quantity: Decimal = Field(gt=0)
    lot: str | None = None
    serials: list[str] = Field(default_factory=list)
    reason: Literal["expired", "damaged", "recalled", "other"]
    note: str | None = None


class InventoryItemDefined(EventBase):
    type: Literal["inventory.item_defined"] = "inventory.item_defined"
    schema_version: Literal[1] = 1
    payload: ItemDefinedPayload


class InventoryThresholdSet(EventBase):
    type: Literal["inventory.threshold_set"] = "inventory.threshold_set"
    schema_version: Literal[1] = 1
    payload: ThresholdSetPayload


class InventoryReceived(EventBase):
    type: Literal["inventory.received"] = "inventory.received"
    schema_version: Literal[1] = 1
    payload: ReceivedPayload


class InventoryTransferred(EventBase):
    type: Literal["inventory.transferred"] = "inventory.transferred"
    schema_version: Literal[1] = 1
    payload: TransferredPayload


class InventoryConsumed(EventBase):
    type: Literal["inventory.consumed"] = "inventory.consumed"
    schema_version: Literal[1] = 1
    payload: ConsumedPayload


class InventoryConsumptionCorrected(EventBase):
    type: Literal["inventory.consumption_corrected"] = "inventory.consumption_corrected"
    schema_version: Literal[1] = 1
    payload: ConsumptionCorrectedPayload


class InventoryAdjusted(EventBase):
    type: Literal["inventory.adjusted"] = "inventory.adjusted"
    schema_version: Literal[1] = 1
    payload: AdjustedPayload


class InventoryDisposed(EventBase):
    type: Literal["inventory.disposed"] = "inventory.disposed"
    schema_version: Literal[1] = 1
    payload: DisposedPayload


INVENTORY_EVENTS = (
    InventoryItemDefined,
    InventoryThresholdSet,
    InventoryReceived,
    InventoryTransferred,
    InventoryConsumed,
    InventoryConsumptionCorrected,
    InventoryAdjusted,
    InventoryDisposed,
)
