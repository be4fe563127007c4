"""Below-minimum alerts: the crossing rule, the derived events a crossing publishes, the alert list.

A position (item at a place) is below when it has seen stock (a movement or a count), has a
threshold, and its on-hand total over all lots is under the minimum. A *crossing* is the
change from at or above the minimum to below it, judged on the position as it was before and
after every event that touches it (a movement, a count, a new threshold); it publishes
`inventory.below_minimum` and, when the maximum is above what is on hand,
`inventory.reorder_requested` for the difference with the item's supplier. Staying below
publishes nothing more; getting back to the minimum re-arms. Stock that rises never crosses:
a place filled from empty up to a level still under its minimum is below (it is listed) but
has not fallen, so it publishes nothing. A first threshold, or a raised one, above what a
stocked place holds is a crossing (no minimum counts as nothing to fall below).

Ids are deterministic, `event_id_for("hub", "below_min:<item>:<place>", <crossing number>)`
(`reorder:` for the reorder), so a replay or a rebuild produces the same ids. A position that
has never seen stock is not below: a threshold set ahead of the first delivery is no shortage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from projections.inventory.tables import items, positions
from schemas._base import DeptRef, LocationRef, SourceSystem
from schemas.derived import (
    BelowMinimumPayload,
    InventoryBelowMinimum,
    InventoryReorderRequested,
    ReorderRequestedPayload,
)
from schemas.envelope import Source
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from schemas.envelope import EventBase

ADAPTER_VERSION = "hub/inventory/1"


def is_below(position: dict[str, Any]) -> bool:
    minimum = position["minimum"]
    return bool(position["has_stock"]) and minimum is not None and position["on_hand"] < minimum


def before(position: dict[str, Any]) -> tuple[bool, Any, Any]:
    """What `evaluate` needs of a position before an event changes it: has stock, on hand, minimum."""
    return bool(position["has_stock"]), position["on_hand"], position["minimum"]


def at_or_above(state: tuple[bool, Any, Any]) -> bool:
    """Whether a position in `state` (see `before`) holds stock at or above its minimum, if any."""
    has_stock, on_hand, minimum = state
    return has_stock and (minimum is None or on_hand >= minimum)


def evaluate(position: dict[str, Any], prior: tuple[bool, Any, Any], trigger: EventBase) -> int | None:
    """Update the position's alert state after `trigger`; the crossing number when it just crossed.

    `prior` is the position's state before `trigger` (`before`): only a fall from at or above
    the minimum crosses, so stock rising from empty to under the minimum publishes nothing.
    """
    below = is_below(position)
    if below and not position["below"]:
        position.update(below=True, below_since=trigger.occurred_at)
        if at_or_above(prior):
            position["crossings"] += 1
            return int(position["crossings"])
        return None
    if not below and position["below"]:
        position.update(below=False, below_since=None)
    return None


def place_of(row: dict[str, Any]) -> LocationRef:
    """The LocationRef a position or stock row was keyed from."""
    return LocationRef(
        department=DeptRef(code=row["department_code"], name=row["department_name"]), location=row["location"]
    )


def crossing_events(
    trigger: EventBase, position: dict[str, Any], crossing: int, *, supplier: str | None, reorder: bool
) -> list[EventBase]:
    """`inventory.below_minimum` (and the reorder request) for one crossing of `position`."""
    item_id, key = position["item_id"], position["location_key"]
    place = place_of(position)
    below_fact = f"below_min:{item_id}:{key}"
    out: list[EventBase] = [
        InventoryBelowMinimum(
            **_envelope(trigger, below_fact, crossing),
            payload=BelowMinimumPayload(
                item_id=item_id, location=place, on_hand=position["on_hand"], minimum=position["minimum"]
            ),
        )
    ]
    maximum = position["maximum"]
    if reorder and maximum is not None and maximum > position["on_hand"]:
        out.append(
            InventoryReorderRequested(
                **_envelope(trigger, f"reorder:{item_id}:{key}", crossing),
                payload=ReorderRequestedPayload(
                    item_id=item_id, location=place, quantity=maximum - position["on_hand"], supplier=supplier
                ),
            )
        )
    return out


def _envelope(trigger: EventBase, fact: str, crossing: int) -> dict[str, Any]:
    # Times come from the trigger, never the wall clock: a rebuild must produce identical events.
    return {
        "event_id": event_id_for(SourceSystem.HUB.value, fact, crossing),
        "occurred_at": trigger.occurred_at,
        "recorded_at": trigger.recorded_at,
        "source": Source(
            system=SourceSystem.HUB,
            site=trigger.source.site,
            message_id=f"{fact}:{crossing}",
            adapter_version=ADAPTER_VERSION,
        ),
        "subject": trigger.subject,
        "correlation_id": trigger.correlation_id,
        "causation_id": str(trigger.event_id),
    }


def list_alerts(
    conn: Connection,
    *,
    department: str | None = None,
    item: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Positions below minimum now (item, then place order), with the suggested reorder quantity."""
    p = positions.c
    conditions: list[Any] = [p.below.is_(True)]
    if department is not None:
        conditions.append(or_(p.department_code == department, p.department_name == department))
    if item is not None:
        conditions.append(
            or_(p.item_id == item, p.item_id.in_(select(items.c.item_id).where(items.c.item_code == item)))
        )
    total = conn.execute(select(func.count()).select_from(positions).where(*conditions)).scalar_one()
    query = (
        select(
            p.item_id,
            items.c.item_code,
            items.c.name.label("item_name"),
            items.c.spec,
            items.c.unit,
            items.c.supplier,
            p.department_code,
            p.department_name,
            p.location,
            p.on_hand,
            p.minimum,
            p.maximum,
            p.reorder_point,
            p.below_since,
            p.crossings,
        )
        .select_from(positions.outerjoin(items, items.c.item_id == p.item_id))
        .where(*conditions)
        .order_by(p.position_key)
        .limit(limit)
        .offset(offset)
    )
    rows = []
    for row in conn.execute(query).mappings():
        out = dict(row)
        gap = out["maximum"] - out["on_hand"] if out["maximum"] is not None else None
        out["suggested_reorder"] = gap if gap is not None and gap > 0 else None
        rows.append(out)
    return rows, int(total)
