"""Tables of the inventory read model, and the keys that name a place and a lot in them.

- `inventory_items`: the item master (one row per hub item id), latest definition wins.
- `inventory_positions`: one item at one place (department + location text): total on hand over
  its lots, the threshold set for it, and the below-minimum alert state (with its crossing count).
- `inventory_stock`: one item at one place in one lot: on hand, and the stocktake count it rests on.
- `inventory_lots`: expiry per item and lot (first one learned), joined by the stock queries.
- `inventory_movements`: the ledger, one row per movement leg (a transfer has two) or stocktake
  count; levels are derived from it, and recall and lot traces read it.
- `inventory_units`: one serialised unit (item + serial): where it is and what became of it.
- `inventory_unit_events`: each unit's path, one row per event that named its serial.
- `inventory_codes`: every barcode and UDI text seen, pointing at the item/serial/lot it named.

Keys: a place is `<department code, else name>|<location text>`; a lot is its text, `''` when
the source gave none. Rows the fold reads back are keyed by ONE string column joining their
parts with the unit separator (`position_key`, `stock_key`, `unit_key`): a batch loads them with
a one-column IN list, which both databases answer from the primary key (SQLite scans the table
for a row-value IN list), and the key sorts like the tuple it joins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)

from projections.runtime.sqltypes import ExactDecimal, UtcDateTime

if TYPE_CHECKING:
    from schemas._base import LocationRef

NAME = "inventory"
METADATA = MetaData()

_ID = 64
_KEY = 300
_EVENT_ID = 36
SEP = "\x1f"


def _place() -> list[Column[Any]]:
    return [
        Column("department_code", String(64)),
        Column("department_name", String(200)),
        Column("location", Text),
    ]


items = Table(
    f"{NAME}_items",
    METADATA,
    Column("item_id", String(_ID), primary_key=True),
    Column("item_code", Text),
    Column("name", Text),
    Column("spec", Text),
    Column("unit", Text),
    Column("gtin", String(64)),
    Column("udi_di", String(128)),
    Column("gtin14", String(14), index=True),  # gtin as GTIN-14, for matching scans
    Column("udi_gtin14", String(14), index=True),  # a GS1 UDI-DI as GTIN-14
    Column("high_value", Boolean, nullable=False, default=False),
    Column("category", Text),
    Column("supplier", Text),
    Column("price", ExactDecimal),
    Column("currency", String(3)),
    Column("source_system", String(16)),
    Column("defined_at", UtcDateTime),
    Column("updated_event_id", String(_EVENT_ID)),
    # Defined from a movement's own item code and name (no item master definition yet).
    Column("provisional", Boolean, nullable=False, default=False, server_default=false()),
)

positions = Table(
    f"{NAME}_positions",
    METADATA,
    Column("position_key", String(_ID + _KEY + 1), primary_key=True),
    Column("item_id", String(_ID), nullable=False),
    Column("location_key", String(_KEY), nullable=False),
    *_place(),
    Column("on_hand", ExactDecimal, nullable=False),
    Column("has_stock", Boolean, nullable=False),  # any movement or count seen here
    Column("minimum", ExactDecimal),
    Column("maximum", ExactDecimal),
    Column("reorder_point", ExactDecimal),
    Column("threshold_at", UtcDateTime),
    Column("below", Boolean, nullable=False),
    Column("below_since", UtcDateTime),
    Column("crossings", Integer, nullable=False),
    Column("last_movement_at", UtcDateTime),
    Index(f"ix_{NAME}_positions_below", "below"),
    Index(f"ix_{NAME}_positions_item", "item_id"),
)

stock = Table(
    f"{NAME}_stock",
    METADATA,
    Column("stock_key", String(_ID + 2 * _KEY + 2), primary_key=True),
    Column("position_key", String(_ID + _KEY + 1), nullable=False),
    Column("item_id", String(_ID), nullable=False),
    Column("location_key", String(_KEY), nullable=False),
    Column("lot_key", String(_KEY), nullable=False),
    *_place(),
    Column("lot", Text),
    Column("on_hand", ExactDecimal, nullable=False),
    Column("in_stock", Boolean, nullable=False),  # on_hand > 0: decimals are text on SQLite
    Column("count_at", UtcDateTime),  # the stocktake the level rests on
    Column("count_event_id", String(_EVENT_ID)),
    Column("count_quantity", ExactDecimal),
    Column("last_movement_at", UtcDateTime),
    Index(f"ix_{NAME}_stock_department_code", "department_code"),
    Index(f"ix_{NAME}_stock_department_name", "department_name"),
    Index(f"ix_{NAME}_stock_lot", "lot_key"),
    Index(f"ix_{NAME}_stock_position", "position_key"),
)

lots = Table(
    f"{NAME}_lots",
    METADATA,
    Column("item_id", String(_ID), primary_key=True),
    Column("lot_key", String(_KEY), primary_key=True),
    Column("expiry", Date, nullable=False),
)

movements = Table(
    f"{NAME}_movements",
    METADATA,
    Column("event_id", String(_EVENT_ID), primary_key=True),
    Column("leg", SmallInteger, primary_key=True),
    Column("stock_key", String(_ID + 2 * _KEY + 2), nullable=False),
    Column("item_id", String(_ID), nullable=False),
    Column("location_key", String(_KEY), nullable=False),
    Column("lot_key", String(_KEY), nullable=False),
    *_place(),
    Column("lot", Text),
    Column("kind", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("quantity", ExactDecimal, nullable=False),  # signed delta; the count for kind=counted
    Column("book_quantity", ExactDecimal),
    Column("serials", Text),  # ';'-joined, for display
    Column("point_of_use", Text),
    Column("counterpart_key", String(_KEY)),  # the other place of a transfer
    Column("supplier", Text),
    Column("po_number", Text),
    Column("document_no", Text),
    Column("patient_token", String(128)),
    Column("procedure_code", Text),
    Column("charge_id", Text),
    Column("reason", Text),
    Column("source_system", String(16)),
    Column("raw_ref", Text),
    Index(f"ix_{NAME}_movements_level", "stock_key", "occurred_at"),
    Index(f"ix_{NAME}_movements_lot", "lot_key", "item_id"),
)

units = Table(
    f"{NAME}_units",
    METADATA,
    Column("unit_key", String(_ID + _KEY + 1), primary_key=True),
    Column("item_id", String(_ID), nullable=False),
    Column("serial", String(_KEY), nullable=False),
    Column("lot", Text),
    Column("status", String(16), nullable=False),  # in_stock | consumed | disposed
    *_place(),
    Column("location_key", String(_KEY)),
    Column("state_at", UtcDateTime),
    Column("state_rank", SmallInteger),
    Column("state_event_id", String(_EVENT_ID)),
    Column("received_at", UtcDateTime),
    Column("supplier", Text),
    Column("po_number", Text),
    Column("consumed_at", UtcDateTime),
    Column("patient_token", String(128)),
    Column("procedure_code", Text),
    Column("disposed_at", UtcDateTime),
    Column("disposal_reason", Text),
    Index(f"ix_{NAME}_units_serial", "serial"),
    Index(f"ix_{NAME}_units_lot", "lot"),
)

unit_events = Table(
    f"{NAME}_unit_events",
    METADATA,
    Column("unit_key", String(_ID + _KEY + 1), primary_key=True),
    Column("event_id", String(_EVENT_ID), primary_key=True),
    Column("item_id", String(_ID), nullable=False),
    Column("serial", String(_KEY), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("lot", Text),
    *_place(),
    Column("from_department_code", String(64)),
    Column("from_department_name", String(200)),
    Column("from_location", Text),
    Column("point_of_use", Text),
    Column("supplier", Text),
    Column("po_number", Text),
    Column("document_no", Text),
    Column("patient_token", String(128)),
    Column("procedure_code", Text),
    Column("reason", Text),
    Column("source_system", String(16)),
    Column("raw_ref", Text),
)

codes = Table(
    f"{NAME}_codes",
    METADATA,
    Column("code", String(512), primary_key=True),
    Column("item_id", String(_ID), primary_key=True),
    Column("serial", String(_KEY), primary_key=True),  # '' for a lot-level code
    Column("lot_key", String(_KEY), primary_key=True),
)


def join_key(*parts: str) -> str:
    """One key column from its parts, separated by the unit separator (no source text holds it)."""
    return SEP.join(parts)


def department_key(place: LocationRef) -> str:
    """The department part of a place key: its code, else its name, else ''."""
    return place.department.code or place.department.name or ""


def location_key(place: LocationRef) -> str:
    """`<department code, else name>|<location text>`: the key stock and thresholds are held by."""
    return f"{department_key(place)}|{place.location or ''}"


def lot_key(lot: str | None) -> str:
    return lot or ""


def place_columns(place: LocationRef) -> dict[str, str | None]:
    return {
        "department_code": place.department.code,
        "department_name": place.department.name,
        "location": place.location,
    }
