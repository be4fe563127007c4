"""Response models of the /inventory endpoints. Quantities are exact decimals (strings in JSON)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Place(_Out):
    department_code: str | None
    department_name: str | None
    location: str | None = Field(description="Place text within the department (store bin, room)")


class _ItemRef(_Out):
    item_id: str = Field(description="Hub item id")
    item_code: str | None = Field(description="The source's item code (from the item master)")
    item_name: str | None
    spec: str | None


class StockOut(_ItemRef, _Place):
    """Stock of one item at one place in one lot."""

    unit: str | None
    high_value: bool | None
    lot: str | None
    expiry: date | None
    on_hand: Decimal
    last_movement_at: datetime | None = Field(description="Business time of the latest movement here")
    count_at: datetime | None = Field(description="The stocktake this level rests on, if any")
    below_minimum: bool = Field(description="Whether the item at this place is below its minimum")


class AlertOut(_ItemRef, _Place):
    """An item at a place that is below its minimum now."""

    unit: str | None
    supplier: str | None = Field(description="Preferred supplier, from the item master")
    on_hand: Decimal
    minimum: Decimal
    maximum: Decimal | None
    reorder_point: Decimal | None
    suggested_reorder: Decimal | None = Field(description="Quantity that brings the place to its maximum")
    below_since: datetime | None = Field(description="Business time of the event that crossed below")
    crossings: int = Field(description="How many times this place has crossed below its minimum")


class DistributionOut(_Out):
    """How much of an item one department holds, over all its places."""

    department_code: str | None
    department_name: str | None
    on_hand: Decimal
    places: int
    places_below_minimum: int


class ExpiringOut(_ItemRef, _Place):
    """Stock on hand of a lot that expires within the window (or has expired)."""

    unit: str | None
    high_value: bool | None
    lot: str | None
    expiry: date
    on_hand: Decimal
    days_left: int = Field(description="Days from as_of to the expiry date; negative once expired")
    expired: bool


class ItemOut(_Out):
    """One item of the master (latest definition)."""

    item_id: str
    item_code: str | None
    name: str | None
    spec: str | None
    unit: str | None
    gtin: str | None
    udi_di: str | None
    high_value: bool
    category: str | None
    supplier: str | None
    price: Decimal | None
    currency: str | None
    source_system: str | None
    defined_at: datetime | None
    provisional: bool = Field(
        default=False, description="Defined from a movement's item code and name: no item master yet"
    )


class ItemPlaceOut(_Place):
    """One place holding (or set up to hold) the item."""

    on_hand: Decimal
    minimum: Decimal | None
    maximum: Decimal | None
    reorder_point: Decimal | None
    below: bool
    below_since: datetime | None


class ItemDetailOut(ItemOut):
    """An item with its stock per place."""

    on_hand: Decimal = Field(description="Total over every place")
    positions: list[ItemPlaceOut]


class TraceStepOut(_Place):
    """One event in a unit's or lot's path, oldest first."""

    event_id: str
    kind: str = Field(description="received | transferred | consumed | disposed | counted")
    occurred_at: datetime
    quantity: Decimal | None = None
    from_department_code: str | None
    from_department_name: str | None
    from_location: str | None
    point_of_use: str | None = Field(description="Where a unit was used (theatre, bed), when scanned there")
    supplier: str | None
    po_number: str | None
    document_no: str | None
    patient_token: str | None = Field(description="Pseudonymous patient token (never a raw identifier)")
    procedure_code: str | None
    reason: str | None
    source_system: str | None
    raw_ref: str | None = Field(description="The raw message this step was read from")


class TraceUnitOut(_ItemRef, _Place):
    """One serialised unit: what it is, where it is or what became of it, and its path."""

    gtin: str | None
    udi_di: str | None
    serial: str
    lot: str | None
    expiry: date | None
    status: str = Field(description="in_stock | consumed | disposed")
    received_at: datetime | None
    supplier: str | None
    po_number: str | None
    consumed_at: datetime | None
    patient_token: str | None
    procedure_code: str | None
    disposed_at: datetime | None
    disposal_reason: str | None
    steps: list[TraceStepOut]


class OnHandOut(_Place):
    """What is left of a lot at one place."""

    item_id: str
    lot: str | None
    on_hand: Decimal
    serials: list[str] = Field(default_factory=list, description="Serialised units of the lot here")


class TraceLotOut(_ItemRef):
    """A lot-tracked item's lot: its ledger and what is left where."""

    gtin: str | None
    udi_di: str | None
    lot: str
    expiry: date | None
    steps: list[TraceStepOut]
    on_hand: list[OnHandOut]


class TraceOut(_Out):
    """What a scanned code names, and every unit or lot it matched."""

    code: str
    gtin: str | None = Field(description="GTIN-14 read from the code, if it is a GS1 code")
    lot: str | None
    serial: str | None
    expiry: date | None
    units: list[TraceUnitOut]
    lots: list[TraceLotOut]


class UsedOut(_Place):
    """A consumption or disposal of (part of) a lot."""

    event_id: str
    item_id: str
    occurred_at: datetime
    point_of_use: str | None
    quantity: Decimal
    serials: str | None = Field(description="Serials of the units, ';'-separated")
    patient_token: str | None
    procedure_code: str | None
    charge_id: str | None
    reason: str | None


class RecallOut(_Out):
    """One lot, for a recall: still on hand (where), already used (patients), disposed."""

    lot: str
    gtin: str | None
    item: str | None
    on_hand: list[OnHandOut]
    consumed: list[UsedOut]
    disposed: list[UsedOut]
    on_hand_total: Decimal
    consumed_total: Decimal
    disposed_total: Decimal


class _Page(_Out):
    total: int = Field(description="Rows matching the filters, over all pages")
    limit: int
    offset: int


class StockPage(_Page):
    items: list[StockOut]


class AlertPage(_Page):
    items: list[AlertOut]


class DistributionPage(_Page):
    items: list[DistributionOut]


class ExpiringPage(_Page):
    items: list[ExpiringOut]


class ItemPage(_Page):
    items: list[ItemOut]
