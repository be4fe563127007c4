"""The inventory fold: one batch of events applied, in order, to the rows they touch, in memory.

Levels and the stocktake rule. Each stock row (item × place × lot) rests on its latest count,
ordered by (occurred_at, event id): on hand = that count + every movement that occurred after
it; without a count, the sum of all movements. A movement at or before the count is already in
the count, so it goes to the ledger and leaves the level alone: a consumption scanned at T-1
and arriving after a stocktake at T is never counted twice. A newer count re-derives the level
from the ledger (stored rows + this batch's). A count older than the current one changes
nothing but the ledger. The level is therefore a function of the ledger alone, whatever order
or batching the events came in.

Units (serialised goods): one row per item + serial whose state (status and place) is that of
its latest event by (occurred_at, rank, event id), rank ordering a receipt before a transfer
before a consumption or disposal at the same instant. Receipt, consumption and disposal details
are kept from the first such event.

Item master and thresholds: the definition with the latest occurred_at wins (a tie goes to the
one applied last). An item no master defines yet is defined from the item code and name its
movements carry, flagged `provisional` until a master definition replaces it.
Consumption corrected: the original's legs are undone (its quantity back on the levels it
left), its ledger and unit-event rows dropped, and the corrected consumption booked under the
original's event id; a unit whose state that consumption set takes the corrected place.
Alerts: see projections.inventory.alerts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from projections.inventory.alerts import before, crossing_events, evaluate
from projections.inventory.codes import gtin14
from projections.inventory.legs import as_consumed, details
from projections.inventory.tables import (
    items,
    join_key,
    location_key,
    lot_key,
    movements,
    place_columns,
    positions,
    stock,
    unit_events,
    units,
)
from schemas.inventory import InventoryConsumptionCorrected

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

    from projections.inventory.legs import Leg
    from schemas._base import LocationRef
    from schemas.envelope import EventBase
    from schemas.inventory import InventoryItemDefined, InventoryThresholdSet

Row = dict[str, Any]
ZERO = Decimal(0)
_RANK = {"received": 0, "transferred_in": 1, "consumed": 2, "disposed": 2}
_STATUS = {
    "received": "in_stock",
    "transferred_in": "in_stock",
    "consumed": "consumed",
    "disposed": "disposed",
}
_UNIT_KIND = {"transferred_in": "transferred"}
_KEY_COLUMN = {
    items.name: "item_id",
    positions.name: "position_key",
    stock.name: "stock_key",
    units.name: "unit_key",
}
_COLUMNS = {
    t.name: tuple(c.name for c in t.columns) for t in (items, positions, stock, units, movements, unit_events)
}


def _blank(table_name: str, **values: Any) -> Row:
    row = dict.fromkeys(_COLUMNS[table_name])
    row.update(values)
    return row


class InventoryFold:
    """State of the rows one batch touches, starting from what is stored.

    `prior`: per stock key, the stored movements (time, quantity) a count in this batch may need:
    those after the earliest such count of the key. This batch's movements are added as it goes.
    """

    def __init__(
        self,
        stored: dict[str, dict[str, Row]],
        prior: dict[str, list[tuple[datetime, Decimal]]],
        *,
        reorder_requests: bool,
    ) -> None:
        self.rows = stored  # table name -> key -> row
        self.dirty: dict[str, set[str]] = {name: set() for name in stored}
        self.reorder_requests = reorder_requests
        self.lots: dict[tuple[str, str], date] = {}
        self.movements: list[Row] = []
        self.unit_events: list[Row] = []
        self.codes: dict[tuple[str, str, str, str], None] = {}
        self.pending = {key: list(moves) for key, moves in prior.items()}
        self.derived: list[EventBase] = []
        self.superseded: set[str] = set()  # event ids of consumptions corrected in this batch

    # -- item master and thresholds ---------------------------------------------------------

    def item_defined(self, event: InventoryItemDefined) -> None:
        row = self._row(items.name, event.subject, item_id=event.subject, high_value=False)
        if row["defined_at"] is not None and event.occurred_at < row["defined_at"]:
            return
        p = event.payload
        row.update(
            item_code=p.item_code, name=p.name, spec=p.spec, unit=p.unit, gtin=p.gtin, udi_di=p.udi_di,
            gtin14=gtin14(p.gtin), udi_gtin14=gtin14(p.udi_di), high_value=p.high_value,
            category=p.category, supplier=p.supplier,
            price=p.price.amount if p.price else None, currency=p.price.currency if p.price else None,
            source_system=event.source.system.value, defined_at=event.occurred_at,
            updated_event_id=str(event.event_id), provisional=False,
        )  # fmt: skip

    def item_seen(self, event: EventBase) -> None:
        """An item first seen in a movement is defined from its code and name, flagged provisional.

        An item master definition, earlier or later, always wins over it; until then the first
        movement to name a code or a name fills it (a later one only what is still missing).
        """
        payload = getattr(event, "payload", None)  # every stock event's payload is a MovementItem
        code = getattr(payload, "item_code", None)
        name = getattr(payload, "item_name", None)
        if not code and not name:
            return
        row = self.rows[items.name].get(event.subject)
        if row is not None and row["defined_at"] is not None:
            return  # the item master defined it
        if row is not None and row["item_code"] is not None and row["name"] is not None:
            return
        row = self._row(items.name, event.subject, item_id=event.subject, high_value=False)
        if row["item_code"] is None and row["name"] is None:
            row.update(source_system=event.source.system.value, updated_event_id=str(event.event_id))
        gtin = getattr(getattr(payload, "barcode", None), "gtin", None)  # a HIS charge's scanned UDI
        row.update(
            item_code=row["item_code"] or code, name=row["name"] or name, provisional=True,
            gtin=row["gtin"] or gtin, gtin14=row["gtin14"] or gtin14(gtin),
        )  # fmt: skip

    def threshold_set(self, event: InventoryThresholdSet) -> None:
        p = event.payload
        position = self._position(event.subject, p.location, location_key(p.location))
        prior = before(position)
        if position["threshold_at"] is None or event.occurred_at >= position["threshold_at"]:
            position.update(
                minimum=p.minimum,
                maximum=p.maximum,
                reorder_point=p.reorder_point,
                threshold_at=event.occurred_at,
            )
        self._evaluate(event, position, prior)

    # -- stock -----------------------------------------------------------------------------

    def stock_event(self, event: EventBase, legs: Sequence[Leg]) -> None:
        if isinstance(event, InventoryConsumptionCorrected):
            self._consumption_corrected(event, legs)
            return
        self.item_seen(event)
        touched: dict[str, tuple[Row, tuple[bool, Any, Any]]] = {}
        info = details(event)  # descriptive columns, the same for every leg of the event
        for leg in legs:
            position = self._position(event.subject, leg.place, leg.location_key)
            if position["position_key"] not in touched:  # as it was before this event's first leg
                touched[position["position_key"]] = (position, before(position))
            row = self._stock(event.subject, leg)
            position["has_stock"] = True
            for target in (position, row):
                last = target["last_movement_at"]
                target["last_movement_at"] = (
                    event.occurred_at if last is None else max(last, event.occurred_at)
                )
            if leg.is_count:
                self._count(event, leg, row, position)
            else:
                self._move(event, leg, row, position)
            self._ledger(event, leg, info)
            self._units(event, leg, info)
        for position, prior in touched.values():
            self._evaluate(event, position, prior)

    def _consumption_corrected(self, event: InventoryConsumptionCorrected, legs: Sequence[Leg]) -> None:
        original = as_consumed(event)  # the consumption as it should have read, under its own id
        original_id = str(original.event_id)
        self.superseded.add(original_id)
        self.movements = [m for m in self.movements if m["event_id"] != original_id]
        self.unit_events = [u for u in self.unit_events if u["event_id"] != original_id]
        touched: dict[str, tuple[Row, tuple[bool, Any, Any]]] = {}
        info = details(original)
        for leg in legs:
            position = self._position(event.subject, leg.place, leg.location_key)
            if position["position_key"] not in touched:
                touched[position["position_key"]] = (position, before(position))
            row = self._stock(event.subject, leg)
            self._move(event, leg, row, position)
            if leg.kind == "undone":
                continue
            position["has_stock"] = True
            for target in (position, row):
                last = target["last_movement_at"]
                target["last_movement_at"] = (
                    event.occurred_at if last is None else max(last, event.occurred_at)
                )
            self._ledger(original, leg, info)
            self._units(original, leg, info)
        for position, prior in touched.values():
            self._evaluate(event, position, prior)

    def _move(self, event: EventBase, leg: Leg, row: Row, position: Row) -> None:
        if row["count_at"] is None or event.occurred_at > row["count_at"]:
            self._set_level(row, position, row["on_hand"] + leg.quantity)
        self.pending.setdefault(row["stock_key"], []).append((event.occurred_at, leg.quantity))

    def _count(self, event: EventBase, leg: Leg, row: Row, position: Row) -> None:
        at, event_id = event.occurred_at, str(event.event_id)
        if row["count_at"] is not None and (at, event_id) <= (row["count_at"], row["count_event_id"]):
            return  # an older count: the ledger keeps it, the level rests on the newer one
        pending = self.pending.get(row["stock_key"], ())
        after = sum((q for t, q in pending if t > at), ZERO)
        row.update(count_at=at, count_event_id=event_id, count_quantity=leg.quantity)
        self._set_level(row, position, leg.quantity + after)

    @staticmethod
    def _set_level(row: Row, position: Row, value: Decimal) -> None:
        position["on_hand"] += value - row["on_hand"]
        row["on_hand"] = value
        row["in_stock"] = value > 0

    def _ledger(self, event: EventBase, leg: Leg, info: Row) -> None:
        item = event.subject
        self.movements.append(
            {
                "event_id": str(event.event_id), "leg": leg.number, "item_id": item,
                "stock_key": join_key(item, leg.location_key, lot_key(leg.lot)),
                "location_key": leg.location_key, "lot_key": lot_key(leg.lot), **place_columns(leg.place),
                "lot": leg.lot, "kind": leg.kind, "occurred_at": event.occurred_at, "quantity": leg.quantity,
                "book_quantity": leg.book_quantity, "serials": ";".join(leg.serials) or None,
                "point_of_use": leg.point_of_use, "counterpart_key": leg.counterpart_key,
                **info, "source_system": event.source.system.value, "raw_ref": event.source.raw_ref,
            }
        )  # fmt: skip
        if leg.lot and leg.expiry is not None:
            self.lots.setdefault((item, leg.lot), leg.expiry)
        serial = leg.serials[0] if len(leg.serials) == 1 else ""
        for code in leg.codes:
            self.codes[(code, item, serial, lot_key(leg.lot))] = None

    def _units(self, event: EventBase, leg: Leg, info: Row) -> None:
        if leg.kind not in _RANK:
            return
        item, event_id = event.subject, str(event.event_id)
        for serial in leg.serials:
            unit = self._row(
                units.name, join_key(item, serial), item_id=item, serial=serial, status="in_stock"
            )
            if unit["lot"] is None:
                unit["lot"] = leg.lot
            state = (event.occurred_at, _RANK[leg.kind], event_id)
            # A corrected consumption restates the state it had set (same event id).
            if (
                unit["state_at"] is None
                or unit["state_event_id"] == event_id
                or state
                > (
                    unit["state_at"],
                    unit["state_rank"],
                    unit["state_event_id"],
                )
            ):
                unit.update(
                    status=_STATUS[leg.kind], state_at=state[0], state_rank=state[1], state_event_id=event_id,
                    location_key=leg.location_key, **place_columns(leg.place),
                )  # fmt: skip
            if leg.kind == "received" and unit["received_at"] is None:
                unit.update(
                    received_at=event.occurred_at, supplier=info["supplier"], po_number=info["po_number"]
                )
            elif leg.kind == "consumed" and unit["consumed_at"] is None:
                unit.update(
                    consumed_at=event.occurred_at,
                    patient_token=info["patient_token"],
                    procedure_code=info["procedure_code"],
                )
            elif leg.kind == "disposed" and unit["disposed_at"] is None:
                unit.update(disposed_at=event.occurred_at, disposal_reason=info["reason"])
            self.unit_events.append(self._unit_event(event, leg, serial, info))

    @staticmethod
    def _unit_event(event: EventBase, leg: Leg, serial: str, info: Row) -> Row:
        source = leg.counterpart if leg.kind == "transferred_in" else None
        return {
            "unit_key": join_key(event.subject, serial), "item_id": event.subject, "serial": serial,
            "event_id": str(event.event_id), "kind": _UNIT_KIND.get(leg.kind, leg.kind),
            "occurred_at": event.occurred_at, "lot": leg.lot, **place_columns(leg.place),
            "from_department_code": source.department.code if source else None,
            "from_department_name": source.department.name if source else None,
            "from_location": source.location if source else None,
            "point_of_use": leg.point_of_use, "supplier": info["supplier"], "po_number": info["po_number"],
            "document_no": info["document_no"], "patient_token": info["patient_token"],
            "procedure_code": info["procedure_code"], "reason": info["reason"],
            "source_system": event.source.system.value, "raw_ref": event.source.raw_ref,
        }  # fmt: skip

    # -- rows ------------------------------------------------------------------------------

    def _evaluate(self, event: EventBase, position: Row, prior: tuple[bool, Any, Any]) -> None:
        crossing = evaluate(position, prior, event)
        if crossing is None:
            return
        item = self.rows[items.name].get(position["item_id"])
        supplier = item["supplier"] if item is not None else None
        self.derived += crossing_events(
            event, position, crossing, supplier=supplier, reorder=self.reorder_requests
        )

    def _row(self, table_name: str, key: str, **new: Any) -> Row:
        rows = self.rows[table_name]
        row = rows.get(key)
        if row is None:
            row = rows[key] = _blank(table_name, **new)
            row[_KEY_COLUMN[table_name]] = key
        self.dirty[table_name].add(key)
        return row

    def _position(self, item: str, place: LocationRef, key: str) -> Row:
        position_key = join_key(item, key)
        row = self.rows[positions.name].get(position_key)
        if row is None:
            row = self._row(
                positions.name, position_key, item_id=item, location_key=key, **place_columns(place),
                on_hand=ZERO, has_stock=False, below=False, crossings=0,
            )  # fmt: skip
        else:
            _fill_place(row, place)
            self.dirty[positions.name].add(position_key)
        return row

    def _stock(self, item: str, leg: Leg) -> Row:
        lot = lot_key(leg.lot)
        stock_key = join_key(item, leg.location_key, lot)
        row = self.rows[stock.name].get(stock_key)
        if row is None:
            row = self._row(
                stock.name, stock_key, position_key=join_key(item, leg.location_key), item_id=item,
                location_key=leg.location_key, lot_key=lot, lot=leg.lot, **place_columns(leg.place),
                on_hand=ZERO, in_stock=False,
            )  # fmt: skip
        else:
            _fill_place(row, leg.place)
            self.dirty[stock.name].add(stock_key)
        return row


def _fill_place(row: Row, place: LocationRef) -> None:
    # A place keyed by its code may be named in full by a later event: keep what each one adds.
    if row["department_code"] is None and place.department.code is not None:
        row["department_code"] = place.department.code
    if row["department_name"] is None and place.department.name is not None:
        row["department_name"] = place.department.name
