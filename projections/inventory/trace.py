"""One item, one code: the path of a unit (or a lot) from a scanned code, and recall by lot.

`trace(conn, code)` accepts a UDI, a serial number, or a GS1 string in any form
projections.inventory.codes reads. It matches, and unions:
- a code seen before on a receipt label or a consumption scan, verbatim;
- a serial (the code itself, or the AI (21) of the parsed code; narrowed to the items whose
  GTIN or UDI-DI is the parsed GTIN when any of them is);
- for a code with a GTIN and a lot but no serial (goods tracked by lot), that lot of the items
  with that GTIN.
Each unit comes with its path (received → transferred → consumed or disposed), oldest first;
each lot with its ledger (transfers as one step, from → to) and what is left where.

`recall(conn, lot=...)` lists, for one lot (optionally of one GTIN or item), the stock still on
hand (where, how much, which serials) and what was already consumed (when, where, patient
token, procedure) or disposed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from projections.inventory.codes import gtin14, parse_code
from projections.inventory.queries import item_condition
from projections.inventory.tables import (
    codes,
    items,
    join_key,
    lots,
    movements,
    stock,
    unit_events,
    units,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection

_ORDER = {"received": 0, "transferred": 1, "counted": 1, "consumed": 2, "disposed": 2}
ZERO = Decimal(0)


def trace(conn: Connection, code: str) -> dict[str, Any] | None:
    """What `code` names and the path of each unit or lot it matches; None when nothing does."""
    code = code.strip()
    parsed = parse_code(code)
    unit_keys: set[str] = set()
    lot_refs: set[tuple[str, str]] = set()
    for item_id, serial, lot in conn.execute(
        select(codes.c.item_id, codes.c.serial, codes.c.lot_key).where(codes.c.code == code)
    ):
        if serial:
            unit_keys.add(join_key(item_id, serial))
        elif lot:
            lot_refs.add((item_id, lot))
    unit_keys |= _units_by_serial(conn, code, None)
    if parsed.serial is not None:
        unit_keys |= _units_by_serial(conn, parsed.serial, parsed.gtin)
    elif parsed.gtin is not None and parsed.lot is not None:
        for item_id in _items_with_gtin(conn, parsed.gtin):
            lot_refs.add((item_id, parsed.lot))
    found_units = [_unit_path(conn, key) for key in sorted(unit_keys)]
    found_lots = [lot for ref in sorted(lot_refs) if (lot := _lot_path(conn, *ref)) is not None]
    if not found_units and not found_lots:
        return None
    return {
        "code": code,
        "gtin": parsed.gtin,
        "lot": parsed.lot,
        "serial": parsed.serial,
        "expiry": parsed.expiry,
        "units": found_units,
        "lots": found_lots,
    }


def _items_with_gtin(conn: Connection, gtin: str) -> list[str]:
    normal = gtin14(gtin) or gtin
    query = select(items.c.item_id).where(or_(items.c.gtin14 == normal, items.c.udi_gtin14 == normal))
    return list(conn.execute(query).scalars())


def _units_by_serial(conn: Connection, serial: str, gtin: str | None) -> set[str]:
    rows = conn.execute(select(units.c.unit_key, units.c.item_id).where(units.c.serial == serial)).all()
    if gtin is not None:
        # The GTIN narrows a serial shared by two products; an item master that has not arrived
        # yet (no GTIN known) must not hide the unit.
        same_product = set(_items_with_gtin(conn, gtin))
        narrowed = [row for row in rows if row.item_id in same_product]
        rows = narrowed or rows
    return {row.unit_key for row in rows}


def _item(conn: Connection, item_id: str) -> dict[str, Any]:
    row = conn.execute(
        select(items.c.item_code, items.c.name.label("item_name"), items.c.spec, items.c.gtin, items.c.udi_di)
        .where(items.c.item_id == item_id)
    ).mappings().first()  # fmt: skip
    return (
        dict(row) if row is not None else dict.fromkeys(("item_code", "item_name", "spec", "gtin", "udi_di"))
    )


def _expiry(conn: Connection, item_id: str, lot: str | None) -> Any:
    if not lot:
        return None
    query = select(lots.c.expiry).where(lots.c.item_id == item_id, lots.c.lot_key == lot)
    return conn.execute(query).scalar_one_or_none()


def _unit_path(conn: Connection, unit_key: str) -> dict[str, Any]:
    unit = dict(conn.execute(select(units).where(units.c.unit_key == unit_key)).mappings().one())
    steps = [
        dict(row)
        for row in conn.execute(select(unit_events).where(unit_events.c.unit_key == unit_key)).mappings()
    ]
    steps.sort(key=lambda s: (s["occurred_at"], _ORDER.get(s["kind"], 1), s["event_id"]))
    for step in steps:
        for column in ("unit_key", "item_id", "serial"):
            del step[column]
    del unit["unit_key"], unit["state_rank"], unit["state_event_id"]
    return {
        **unit,
        **_item(conn, unit["item_id"]),
        "expiry": _expiry(conn, unit["item_id"], unit["lot"]),
        "steps": steps,
    }


def _lot_path(conn: Connection, item_id: str, lot: str) -> dict[str, Any] | None:
    m = movements.c
    rows = [
        dict(r)
        for r in conn.execute(select(movements).where(m.item_id == item_id, m.lot_key == lot)).mappings()
    ]
    if not rows:
        return None
    return {
        "item_id": item_id,
        **_item(conn, item_id),
        "lot": lot,
        "expiry": _expiry(conn, item_id, lot),
        "steps": _lot_steps(rows),
        "on_hand": _on_hand(conn, and_(stock.c.item_id == item_id, stock.c.lot_key == lot)),
    }


def _lot_steps(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger rows as steps: a transfer's two legs become one step, from → to."""
    by_event: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["event_id"], r["leg"])):
        kind = "transferred" if row["kind"].startswith("transferred") else row["kind"]
        step = by_event.setdefault(
            row["event_id"],
            {
                "event_id": row["event_id"], "kind": kind, "occurred_at": row["occurred_at"],
                "quantity": abs(row["quantity"]) if kind != "counted" else row["quantity"],
                "from_department_code": None, "from_department_name": None, "from_location": None,
                **{c: row[c] for c in _STEP_COLUMNS},
            },
        )  # fmt: skip
        if row["kind"] == "transferred_out":
            step.update(
                from_department_code=row["department_code"],
                from_department_name=row["department_name"],
                from_location=row["location"],
            )
        elif row["kind"] == "transferred_in":
            step.update(
                department_code=row["department_code"],
                department_name=row["department_name"],
                location=row["location"],
            )
    return sorted(
        by_event.values(), key=lambda s: (s["occurred_at"], _ORDER.get(s["kind"], 1), s["event_id"])
    )


_STEP_COLUMNS = (
    "department_code", "department_name", "location", "point_of_use", "serials", "supplier",
    "po_number", "document_no", "patient_token", "procedure_code", "reason", "source_system", "raw_ref",
)  # fmt: skip


def _on_hand(conn: Connection, where: ColumnElement[bool]) -> list[dict[str, Any]]:
    s = stock.c
    query = (
        select(s.item_id, s.department_code, s.department_name, s.location, s.lot, s.on_hand, s.location_key)
        .where(where, s.in_stock.is_(True))
        .order_by(s.stock_key)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def recall(conn: Connection, *, lot: str, gtin: str | None = None, item: str | None = None) -> dict[str, Any]:
    """Everything known about one lot: on hand (where, how many, which serials), consumed, disposed."""
    m, s, u = movements.c, stock.c, units.c
    narrow_m: list[Any] = [m.lot_key == lot]
    narrow_s: list[Any] = [s.lot_key == lot]
    narrow_u: list[Any] = [u.lot == lot]
    for column_list, column in ((narrow_m, m.item_id), (narrow_s, s.item_id), (narrow_u, u.item_id)):
        if item is not None:
            column_list.append(item_condition(column, item))
        if gtin is not None:
            column_list.append(column.in_(_items_with_gtin(conn, gtin)))
    on_hand = _on_hand(conn, and_(*narrow_s))
    serials: dict[tuple[str, str], list[str]] = {}
    held = select(u.item_id, u.location_key, u.serial).where(*narrow_u, u.status == "in_stock")
    for item_id, key, serial in conn.execute(held.order_by(u.unit_key)).all():
        serials.setdefault((item_id, key), []).append(serial)
    for row in on_hand:
        row["serials"] = serials.get((row["item_id"], row.pop("location_key")), [])
    used = _used(conn, narrow_m, narrow_u, "consumed")
    disposed = _used(conn, narrow_m, narrow_u, "disposed")
    return {
        "lot": lot,
        "gtin": gtin,
        "item": item,
        "on_hand": on_hand,
        "consumed": used,
        "disposed": disposed,
        "on_hand_total": sum((r["on_hand"] for r in on_hand), ZERO),
        "consumed_total": sum((r["quantity"] for r in used), ZERO),
        "disposed_total": sum((r["quantity"] for r in disposed), ZERO),
    }


_USED_COLUMNS = tuple(
    movements.c[name]
    for name in (
        "event_id", "item_id", "occurred_at", "department_code", "department_name", "location",
        "point_of_use", "quantity", "serials", "patient_token", "procedure_code", "charge_id", "reason",
    )
)  # fmt: skip


def _used(conn: Connection, narrow_m: list[Any], narrow_u: list[Any], kind: str) -> list[dict[str, Any]]:
    """Consumption or disposal movements of the lot, plus units of the lot whose movement named no lot."""
    m, u = movements.c, units.c
    rows = _used_rows(conn, [*narrow_m, m.kind == kind])
    listed = {(r["item_id"], serial) for r in rows for serial in _split(r["serials"])}
    # A scan that named only the serial, arriving before the receipt that told the unit's lot,
    # was booked without a lot: the unit row, filled in by the receipt since, knows the lot.
    when = u.consumed_at if kind == "consumed" else u.disposed_at
    query = select(u.item_id, u.serial).where(*narrow_u, when.is_not(None)).order_by(u.unit_key)
    for item_id, serial in conn.execute(query).all():
        if (item_id, serial) in listed:
            continue
        candidates = _used_rows(
            conn,
            [
                m.item_id == item_id,
                m.kind == kind,
                m.lot_key == "",
                m.serials.contains(serial, autoescape=True),
            ],
        )
        for row in candidates:
            if serial in _split(row["serials"]) and (item_id, serial) not in listed:
                rows.append(row)
                listed.update((item_id, s) for s in _split(row["serials"]))
    return rows


def _used_rows(conn: Connection, where: list[Any]) -> list[dict[str, Any]]:
    query = select(*_USED_COLUMNS).where(*where).order_by(movements.c.occurred_at, movements.c.event_id)
    out = []
    for row in conn.execute(query).mappings():
        entry = dict(row)
        entry["quantity"] = -entry["quantity"]  # stored as a decrement
        out.append(entry)
    return out


def _split(serials: str | None) -> list[str]:
    return [s for s in (serials or "").split(";") if s]


def lot_paths(conn: Connection, lot: str, *, item: str | None = None) -> dict[str, Any] | None:
    """The path of `lot` of every item that has one (or of `item`, an item id or code), trace-shaped."""
    m = movements.c
    query = select(m.item_id).where(m.lot_key == lot).distinct().order_by(m.item_id)
    if item is not None:
        query = query.where(item_condition(m.item_id, item))
    found = [path for item_id in conn.execute(query).scalars() if (path := _lot_path(conn, item_id, lot))]
    if not found:
        return None
    return {"code": lot, "gtin": None, "lot": lot, "serial": None, "expiry": None, "units": [], "lots": found}


def delivery(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """The receipt or transfer `event_id` as a lot path of one step (trace-shaped); None otherwise."""
    m = movements.c
    rows = [dict(r) for r in conn.execute(select(movements).where(m.event_id == event_id)).mappings()]
    if not rows or not str(rows[0]["kind"]).startswith(("received", "transferred")):
        return None
    first = rows[0]
    return {
        "item_id": first["item_id"],
        **_item(conn, first["item_id"]),
        "lot": first["lot"],
        "expiry": _expiry(conn, first["item_id"], first["lot_key"]),
        "steps": _lot_steps(rows),
    }
