"""Inventory read model: stock by item × place × lot, thresholds and alerts, one-item-one-code trace.

Fed by `canonical.inventory.v1` (subjects are hub item ids): item master, thresholds, receipts,
transfers, consumption, stocktakes, disposals. Tables: projections.inventory.tables. Rules:
- Levels derive from a movement ledger and the latest stocktake count, so late events land
  where they belong (projections.inventory.fold).
- Which place, lot and serials a movement concerns: projections.inventory.legs.
- A consumption correction (a retry that found the place a first translation left unknown)
  undoes what the original booked and books the corrected consumption under the original's
  event id: levels, ledger and units read as if the place had been known from the start.
- Crossing below minimum publishes `inventory.below_minimum` and `inventory.reorder_requested`
  once per crossing, as derived events returned from `apply` (projections.inventory.alerts).
- Queries the API serves: projections.inventory.queries (stock, items, distribution, expiring)
  and projections.inventory.trace (trace by code, recall by lot).

Configuration (`InventoryConfig`, passed to `Inventory(...)`):
- `consumption_at_department` (True): book consumption against the department's stock and keep
  the scan's location text (theatre, bed) as the point of use. False when consumption location
  texts are places where stock is kept.
- `reorder_requests` (True): publish `inventory.reorder_requested` with each below-minimum alert.

A batch is folded in memory from the rows it touches as stored, then written with one statement
per table, so applying a stream in any batching yields the same tables and the same derived ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, inspect, select, text

from projections.inventory.alerts import list_alerts
from projections.inventory.fold import InventoryFold
from projections.inventory.legs import STOCK_EVENTS, corrected_legs, leg_of_row, legs_of, serials_named
from projections.inventory.tables import (
    METADATA,
    NAME,
    codes,
    items,
    join_key,
    location_key,
    lot_key,
    lots,
    movements,
    positions,
    stock,
    unit_events,
    units,
)
from projections.runtime.upsert import chunks, in_values, upsert
from schemas.inventory import (
    InventoryConsumed,
    InventoryConsumptionCorrected,
    InventoryItemDefined,
    InventoryThresholdSet,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal

    from sqlalchemy import Column, Connection, Table

    from projections.inventory.legs import Leg
    from schemas.catalogue import Event
    from schemas.envelope import EventBase

TOPICS = ("canonical.inventory.v1",)
_HANDLED = (InventoryItemDefined, InventoryThresholdSet, *STOCK_EVENTS)


@dataclass(frozen=True, slots=True)
class InventoryConfig:
    """Knobs of the inventory read model (see the module docstring)."""

    consumption_at_department: bool = True
    reorder_requests: bool = True


@dataclass(slots=True)
class _Plan:
    """What a batch will touch, decided before loading: legs per event and the keys to load."""

    legs: dict[int, list[Leg]] = field(default_factory=dict)
    item_ids: set[str] = field(default_factory=set)
    position_keys: set[str] = field(default_factory=set)
    stock_keys: set[str] = field(default_factory=set)
    counted: dict[str, datetime] = field(default_factory=dict)  # stock key -> earliest count time


class Inventory:
    """The inventory projection (see the module docstring for its rules)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, config: InventoryConfig | None = None) -> None:
        self.config = config or InventoryConfig()

    def upgrade_schema(self, conn: Connection) -> None:
        """Called by ensure_tables: bring item tables created before `provisional` up to date."""
        if "provisional" not in {c["name"] for c in inspect(conn).get_columns(items.name)}:
            conn.execute(
                text(f"ALTER TABLE {items.name} ADD COLUMN provisional BOOLEAN NOT NULL DEFAULT FALSE")
            )

    def apply(self, conn: Connection, events: Sequence[Event]) -> Sequence[EventBase]:
        """Fold `events` in order over the stored rows they touch; return the alerts they raised."""
        handled = [e for e in events if isinstance(e, _HANDLED)]
        if not handled:
            return []
        stored_units = _load(conn, units, units.c.unit_key, _unit_keys(handled))
        corrected = {str(e.payload.corrects) for e in handled if isinstance(e, InventoryConsumptionCorrected)}
        plan = self._plan(handled, stored_units, _booked(conn, corrected))
        fold = InventoryFold(
            {
                items.name: _load(conn, items, items.c.item_id, plan.item_ids),
                positions.name: _load(conn, positions, positions.c.position_key, plan.position_keys),
                stock.name: _load(conn, stock, stock.c.stock_key, plan.stock_keys),
                units.name: stored_units,
            },
            _prior_movements(conn, plan.counted),
            reorder_requests=self.config.reorder_requests,
        )
        for i, event in enumerate(handled):
            if isinstance(event, InventoryItemDefined):
                fold.item_defined(event)
            elif isinstance(event, InventoryThresholdSet):
                fold.threshold_set(event)
            else:
                fold.stock_event(event, plan.legs[i])
        _write(conn, fold)
        return fold.derived

    def _plan(
        self,
        events: Sequence[EventBase],
        stored_units: dict[str, dict[str, Any]],
        booked: dict[str, list[Leg]],
    ) -> _Plan:
        """Legs of every stock event, resolving lots from units known so far, and the keys touched.

        `booked`: the stored legs of consumptions this batch corrects (by event id); a consumption
        earlier in the batch, or a correction of it, replaces them as the plan goes.
        """
        unit_lots = {key: row["lot"] for key, row in stored_units.items() if row["lot"]}
        plan = _Plan()
        booked = dict(booked)
        at_department = self.config.consumption_at_department

        def unit_lot(item: str, serial: str) -> str | None:
            return unit_lots.get(join_key(item, serial))

        for i, event in enumerate(events):
            plan.item_ids.add(event.subject)
            if isinstance(event, InventoryThresholdSet):
                plan.position_keys.add(join_key(event.subject, location_key(event.payload.location)))
                continue
            if isinstance(event, InventoryConsumptionCorrected):
                original = str(event.payload.corrects)
                legs = corrected_legs(
                    event, booked.get(original, []), unit_lot, consumption_at_department=at_department
                )
                booked[original] = [leg for leg in legs if leg.kind == "consumed"]
            else:
                legs = legs_of(event, unit_lot, consumption_at_department=at_department)
                if isinstance(event, InventoryConsumed):
                    booked[str(event.event_id)] = legs
            plan.legs[i] = legs
            for leg in legs:
                plan.position_keys.add(join_key(event.subject, leg.location_key))
                stock_key = join_key(event.subject, leg.location_key, lot_key(leg.lot))
                plan.stock_keys.add(stock_key)
                if leg.is_count:
                    earliest = plan.counted.get(stock_key)
                    plan.counted[stock_key] = (
                        min(earliest, event.occurred_at) if earliest else event.occurred_at
                    )
                for serial in leg.serials:
                    if leg.lot:  # the fold fills a unit's lot the same way: first one known
                        unit_lots.setdefault(join_key(event.subject, serial), leg.lot)
        return plan


def _unit_keys(events: Sequence[EventBase]) -> set[str]:
    return {join_key(e.subject, serial) for e in events for serial in serials_named(e)}


def _load(conn: Connection, table: Table, key: Column[Any], keys: set[str]) -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = {}
    for chunk in chunks(conn, sorted(keys)):
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) keeps a
        # second runner of the same group, mid-rebalance, from folding over the same rows.
        query = select(table).where(in_values(conn, key, chunk)).with_for_update()
        stored.update((row[key.name], dict(row)) for row in conn.execute(query).mappings())
    return stored


def _booked(conn: Connection, event_ids: set[str]) -> dict[str, list[Leg]]:
    """The stored consumption legs of `event_ids` (what a correction of each must undo)."""
    out: dict[str, list[Leg]] = {}
    for chunk in chunks(conn, sorted(event_ids)):
        query = select(movements).where(
            in_values(conn, movements.c.event_id, chunk), movements.c.kind == "consumed"
        )
        for row in conn.execute(query.order_by(movements.c.event_id, movements.c.leg)).mappings():
            out.setdefault(row["event_id"], []).append(leg_of_row(dict(row)))
    return out


def _prior_movements(
    conn: Connection, counted: dict[str, datetime]
) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Stored movements (not counts) of each counted stock row after its earliest count in the batch."""
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    if not counted:
        return out
    m = movements.c
    since = min(counted.values())
    for chunk in chunks(conn, sorted(counted)):
        query = select(m.stock_key, m.occurred_at, m.quantity).where(
            in_values(conn, m.stock_key, chunk), m.occurred_at > since, m.kind != "counted"
        )
        for key, at, quantity in conn.execute(query):
            if at > counted[key]:
                out.setdefault(key, []).append((at, quantity))
    return out


def _write(conn: Connection, fold: InventoryFold) -> None:
    for table, key in (
        (items, "item_id"),
        (positions, "position_key"),
        (stock, "stock_key"),
        (units, "unit_key"),
    ):
        rows = fold.rows[table.name]
        upsert(conn, table, [rows[k] for k in sorted(fold.dirty[table.name])], key=(key,))
    if fold.superseded:  # consumptions corrected: their ledger rows are booked again, corrected
        for chunk in chunks(conn, sorted(fold.superseded)):
            conn.execute(movements.delete().where(in_values(conn, movements.c.event_id, chunk)))
            conn.execute(unit_events.delete().where(in_values(conn, unit_events.c.event_id, chunk)))
    lot_rows = [{"item_id": i, "lot_key": lot, "expiry": e} for (i, lot), e in sorted(fold.lots.items())]
    upsert(conn, lots, lot_rows, key=("item_id", "lot_key"), update=False)
    upsert(conn, movements, fold.movements, key=("event_id", "leg"), update=False)
    upsert(conn, unit_events, fold.unit_events, key=("unit_key", "event_id"), update=False)
    code_rows = [
        {"code": c, "item_id": i, "serial": s, "lot_key": lot} for c, i, s, lot in sorted(fold.codes)
    ]
    upsert(conn, codes, code_rows, key=("code", "item_id", "serial", "lot_key"), update=False)


def demo_summary(conn: Connection) -> list[tuple[str, list[str], list[list[str]]]]:
    """What `hub demo` prints for this read model: (title, column names, a handful of rows) each."""
    alerts, below = list_alerts(conn, limit=8)
    s, u = stock.c, units.c
    by_status = conn.execute(select(u.status, func.count()).group_by(u.status).order_by(u.status)).all()
    soonest = conn.execute(
        select(items.c.item_code, items.c.name, s.department_name, s.lot, lots.c.expiry, s.on_hand)
        .select_from(
            stock.join(lots, and_(lots.c.item_id == s.item_id, lots.c.lot_key == s.lot_key)).outerjoin(
                items, items.c.item_id == s.item_id
            )
        )
        .where(s.in_stock.is_(True))
        .order_by(lots.c.expiry, s.stock_key)
        .limit(5)
    ).all()
    return [
        (
            f"Inventory below minimum ({below})",
            ["item", "name", "department", "on hand", "minimum", "reorder", "since"],
            [
                _texts(
                    a["item_code"],
                    a["item_name"],
                    a["department_name"] or a["department_code"],
                    a["on_hand"],
                    a["minimum"],
                    a["suggested_reorder"],
                    a["below_since"],
                )
                for a in alerts
            ],
        ),
        ("Serialised units by status", ["status", "units"], [_texts(*row) for row in by_status]),
        (
            "Stock expiring first",
            ["item", "name", "department", "lot", "expiry", "on hand"],
            [_texts(*row) for row in soonest],
        ),
    ]


def _texts(*values: object) -> list[str]:
    return ["" if v is None else v.isoformat() if isinstance(v, date | datetime) else str(v) for v in values]
