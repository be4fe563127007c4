"""Queries over the inventory read model: stock, item master, distribution, expiring lots.

Every list returns (one page of flat rows, total matching). `item` filters take a hub item id
or the source's item code; `department` a department code or name. Decimal sums are done in
Python: decimals are text on SQLite, where SQL SUM would go through floats.

`trace_in_department` and `recall_in_department` narrow a trace or a recall (projections.
inventory_trace) to what one department saw happen: the steps at its places (a transfer also
from them), the stock it holds, the units it used or disposed of.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from projections.inventory.codes import gtin14
from projections.inventory.tables import items, lots, positions, stock

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import ColumnElement, Connection, Select

Page = tuple[list[dict[str, Any]], int]
_ITEM_COLUMNS = (
    items.c.item_code,
    items.c.name.label("item_name"),
    items.c.spec,
    items.c.unit,
    items.c.high_value,
)
_STOCK_COLUMNS = (
    stock.c.item_id,
    *_ITEM_COLUMNS,
    stock.c.department_code,
    stock.c.department_name,
    stock.c.location,
    stock.c.lot,
    lots.c.expiry,
    stock.c.on_hand,
)
_PLACE_COLUMNS = tuple(
    positions.c[name]
    for name in (
        "department_code", "department_name", "location", "on_hand", "minimum", "maximum",
        "reorder_point", "below", "below_since",
    )
)  # fmt: skip


_BELOW = func.coalesce(positions.c.below, False).label("below_minimum")


def item_condition(column: Any, item: str) -> ColumnElement[bool]:
    """`column` (an item id column) names `item`, given as a hub item id or a source item code."""
    return or_(column == item, column.in_(select(items.c.item_id).where(items.c.item_code == item)))


def department_condition(table: Any, department: str) -> ColumnElement[bool]:
    return or_(table.c.department_code == department, table.c.department_name == department)


def _page(conn: Connection, query: Select[Any], count: Select[Any]) -> Page:
    total = int(conn.execute(count).scalar_one())
    return [dict(row) for row in conn.execute(query).mappings()], total


def list_stock(
    conn: Connection,
    *,
    item: str | None = None,
    department: str | None = None,
    location: str | None = None,
    lot: str | None = None,
    high_value: bool | None = None,
    below_minimum: bool | None = None,
    include_empty: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Stock rows (item × place × lot), in key order; by default only those with stock on hand."""
    s, p = stock.c, positions.c
    conditions: list[Any] = []
    if item is not None:
        # Through the item's places: the stock table is indexed by place, not by item.
        conditions.append(s.position_key.in_(select(p.position_key).where(item_condition(p.item_id, item))))
    if department is not None:
        conditions.append(department_condition(stock, department))
    if location is not None:
        conditions.append(s.location == location)
    if lot is not None:
        conditions.append(s.lot_key == lot)
    if high_value is not None:
        conditions.append(s.item_id.in_(select(items.c.item_id).where(items.c.high_value.is_(high_value))))
    if below_minimum is not None:
        flagged = select(p.position_key).where(p.below.is_(True))
        conditions.append(s.position_key.in_(flagged) if below_minimum else s.position_key.not_in(flagged))
    if not include_empty:
        conditions.append(s.in_stock.is_(True))
    # Deferred join: page through the keys alone (an index walk), then join the page's 50 rows;
    # joining first would look items, lots and places up for every row an OFFSET skips.
    page = select(s.stock_key).where(*conditions).order_by(s.stock_key).limit(limit).offset(offset)
    query = (
        select(
            *_STOCK_COLUMNS,
            s.last_movement_at,
            s.count_at,
            func.coalesce(p.below, False).label("below_minimum"),
        )
        .select_from(
            stock.outerjoin(items, items.c.item_id == s.item_id)
            .outerjoin(lots, and_(lots.c.item_id == s.item_id, lots.c.lot_key == s.lot_key))
            .outerjoin(positions, p.position_key == s.position_key)
        )
        .where(s.stock_key.in_(page.scalar_subquery()))
        .order_by(s.stock_key)
    )
    return _page(conn, query, select(func.count()).select_from(stock).where(*conditions))


def list_items(
    conn: Connection,
    *,
    q: str | None = None,
    category: str | None = None,
    high_value: bool | None = None,
    gtin: str | None = None,
    code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Items of the master, by item id. `q`: substring of the name or code; `gtin`: GTIN or UDI-DI;
    `code`: the hub item id or the source item code, exactly."""
    i = items.c
    conditions: list[Any] = [] if code is None else [or_(i.item_id == code, i.item_code == code)]
    if q is not None:
        needle = q.lower()
        conditions.append(
            or_(
                func.lower(i.name).contains(needle, autoescape=True),
                func.lower(i.item_code).contains(needle, autoescape=True),
            )
        )
    if category is not None:
        conditions.append(i.category == category)
    if high_value is not None:
        conditions.append(i.high_value.is_(high_value))
    if gtin is not None:
        normal = gtin14(gtin) or gtin
        conditions.append(or_(i.gtin14 == normal, i.udi_gtin14 == normal, i.gtin == gtin, i.udi_di == gtin))
    query = select(items).where(*conditions).order_by(i.item_id).limit(limit).offset(offset)
    return _page(conn, query, select(func.count()).select_from(items).where(*conditions))


def get_item(conn: Connection, item_id: str, *, department: str | None = None) -> dict[str, Any] | None:
    """One item of the master with its stock per place and its total on hand; None when unknown.

    With `department`, only that department's places (and their total).
    """
    row = conn.execute(select(items).where(items.c.item_id == item_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    p = positions.c
    where = [p.item_id == item_id]
    if department is not None:
        where.append(department_condition(positions, department))
    places = conn.execute(select(*_PLACE_COLUMNS).where(*where).order_by(p.position_key)).mappings()
    out["positions"] = [dict(place) for place in places]
    out["on_hand"] = sum((place["on_hand"] for place in out["positions"]), Decimal(0))
    return out


def distribution(conn: Connection, item: str, *, department: str | None = None) -> list[dict[str, Any]]:
    """Per department: how much of `item` it holds over all its places, and how many are below minimum."""
    p = positions.c
    where = [item_condition(p.item_id, item), p.has_stock.is_(True)]
    if department is not None:
        where.append(department_condition(positions, department))
    rows = conn.execute(
        select(p.department_code, p.department_name, p.on_hand, p.below)
        .where(*where)
        .order_by(p.position_key)
    ).mappings()
    by_department: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for row in rows:
        key = (row["department_code"], row["department_name"])
        entry = by_department.setdefault(
            key,
            {
                "department_code": key[0],
                "department_name": key[1],
                "on_hand": Decimal(0),
                "places": 0,
                "places_below_minimum": 0,
            },
        )
        entry["on_hand"] += row["on_hand"]
        entry["places"] += 1
        entry["places_below_minimum"] += int(bool(row["below"]))
    return sorted(
        by_department.values(),
        key=lambda e: (-e["on_hand"], e["department_code"] or "", e["department_name"] or ""),
    )


def expiring(
    conn: Connection,
    *,
    as_of: date,
    within_days: int,
    department: str | None = None,
    item: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Stock on hand whose lot expires on or before `as_of` + `within_days` (expired ones included)."""
    s = stock.c
    conditions: list[Any] = [s.in_stock.is_(True), lots.c.expiry <= as_of + timedelta(days=within_days)]
    if department is not None:
        conditions.append(department_condition(stock, department))
    if item is not None:
        conditions.append(item_condition(s.item_id, item))
    joined = stock.join(lots, and_(lots.c.item_id == s.item_id, lots.c.lot_key == s.lot_key))
    query = (
        select(*_STOCK_COLUMNS)
        .select_from(joined.outerjoin(items, items.c.item_id == s.item_id))
        .where(*conditions)
        .order_by(lots.c.expiry, s.stock_key)
        .limit(limit)
        .offset(offset)
    )
    rows, total = _page(conn, query, select(func.count()).select_from(joined).where(*conditions))
    for row in rows:
        row["days_left"] = (row["expiry"] - as_of).days
        row["expired"] = row["days_left"] < 0
    return rows, total


def _at(row: dict[str, Any], department: str, prefix: str = "") -> bool:
    return department in (row.get(f"{prefix}department_code"), row.get(f"{prefix}department_name"))


def _step_seen(step: dict[str, Any], department: str) -> bool:
    """A step happened at the department's place, or (a transfer) left from it."""
    return _at(step, department) or _at(step, department, "from_")


_UNIT_ELSEWHERE = (
    "department_code", "department_name", "location", "consumed_at", "patient_token",
    "procedure_code", "disposed_at", "disposal_reason",
)  # fmt: skip


def trace_in_department(found: dict[str, Any], department: str) -> dict[str, Any] | None:
    """`trace(...)` as `department` may see it; None when nothing of it touched the department.

    A unit stays when it is at the department's place now (in stock, or used or disposed of
    there) or when one of its steps was there; only those steps stay. A unit that went on to
    another department loses where it is and what became of it there (patient token included).
    A lot keeps its steps and what is left at the department's places.
    """
    units = []
    for unit in found["units"]:
        here = _at(unit, department)
        steps = [s for s in unit["steps"] if _step_seen(s, department)]
        if not (here or steps):
            continue
        masked = {} if here else dict.fromkeys(_UNIT_ELSEWHERE)
        units.append({**unit, **masked, "steps": steps})
    lots = []
    for lot in found["lots"]:
        steps = [s for s in lot["steps"] if _step_seen(s, department)]
        on_hand = [row for row in lot["on_hand"] if _at(row, department)]
        if steps or on_hand:
            lots.append({**lot, "steps": steps, "on_hand": on_hand})
    if not (units or lots):
        return None
    return {**found, "units": units, "lots": lots}


def recall_in_department(found: dict[str, Any], department: str) -> dict[str, Any]:
    """`recall(...)` as `department` may see it: its stock of the lot, and what it used or disposed of."""
    on_hand = [row for row in found["on_hand"] if _at(row, department)]
    consumed = [row for row in found["consumed"] if _at(row, department)]
    disposed = [row for row in found["disposed"] if _at(row, department)]
    return {
        **found,
        "on_hand": on_hand,
        "consumed": consumed,
        "disposed": disposed,
        "on_hand_total": sum((r["on_hand"] for r in on_hand), Decimal(0)),
        "consumed_total": sum((r["quantity"] for r in consumed), Decimal(0)),
        "disposed_total": sum((r["quantity"] for r in disposed), Decimal(0)),
    }


def list_places(conn: Connection) -> list[dict[str, Any]]:
    """The distinct (department code, name, location) that hold or held stock (FHIR Location)."""
    p = positions.c
    query = (
        select(p.department_code, p.department_name, p.location)
        .where(p.department_code.is_not(None))
        .distinct()
        .order_by(p.department_code, p.location)
    )
    return [dict(row) for row in conn.execute(query).mappings()]
