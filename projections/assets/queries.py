"""Queries over the asset registry's tables: lists, one record, history, conflicts, id resolution.

Read-only; the API calls these with a connection of its own. A record id that was merged into
another (a provisional record, a duplicate) resolves to the golden record it lives on now.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from projections.assets.state import load_contracts
from projections.assets.tables import aliases, assets, conflicts, history, identifiers, merges
from projections.runtime.upsert import in_values

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Connection

INACTIVE_STATUSES = ("scrapped", "sealed")
QUALIFIED_SCHEME = "ns"  # adapters.namespaces.QUALIFIED_SCHEME (projections never import adapters)
_SCHEME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_HISTORY_ORDER = (history.c.occurred_at, history.c.recorded_at, history.c.event_id)


def list_assets(
    conn: Connection,
    *,
    department: str | None = None,
    status: str | None = None,
    name: str | None = None,
    category: str | None = None,
    identifier: str | None = None,
    provisional: bool | None = None,
    active: bool | None = None,
    udi_di: str | None = None,
    updated: tuple[datetime | None, datetime | None] = (None, None),
    place: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of golden records (ordered by asset id) and the total matching the filters.

    `department` and `category` match a code or a name exactly; `name` is a case-insensitive
    substring; `identifier` matches the value of any linked identifier, or `scheme:value`;
    `place` is the location text; `udi_di` is a device identifier the UDI holds; `updated`
    bounds the last business time (from inclusive, to exclusive).
    """
    conditions: list[Any] = _more_conditions(udi_di, updated, place)
    if department is not None:
        conditions.append(or_(assets.c.department_code == department, assets.c.department_name == department))
    if status is not None:
        conditions.append(assets.c.status == status)
    if name is not None:
        conditions.append(func.lower(assets.c.name).contains(name.lower(), autoescape=True))
    if category is not None:
        conditions.append(or_(assets.c.category_code == category, assets.c.category_name == category))
    if identifier is not None:
        conditions.append(
            assets.c.asset_id.in_(select(identifiers.c.asset_id).where(_identifier(identifier)))
        )
    if provisional is not None:
        conditions.append(assets.c.provisional.is_(provisional))
    if active is not None:  # inactive: scrapped, sealed or decommissioned (FHIR Device.status)
        retired = or_(assets.c.status.in_(INACTIVE_STATUSES), assets.c.decommissioned.is_(True))
        conditions.append(~retired if active else retired)
    total = conn.execute(select(func.count()).select_from(assets).where(*conditions)).scalar_one()
    page = conn.execute(
        select(assets).where(*conditions).order_by(assets.c.asset_id).limit(limit).offset(offset)
    ).mappings()
    rows = [dict(row) for row in page]
    links = _identifiers_of(conn, [row["asset_id"] for row in rows])
    for row in rows:
        row["identifiers"] = links.get(row["asset_id"], [])
    return rows, int(total)


def _more_conditions(
    udi_di: str | None, updated: tuple[datetime | None, datetime | None], place: str | None
) -> list[Any]:
    out: list[Any] = [] if place is None else [assets.c.location == place]
    if udi_di is not None:
        out.append(assets.c.udi.contains(udi_di, autoescape=True))
    if updated[0] is not None:
        out.append(assets.c.last_occurred_at >= updated[0])
    if updated[1] is not None:
        out.append(assets.c.last_occurred_at < updated[1])
    return out


def _identifier(text: str) -> Any:
    """Any identifier whose value is `text`, or whose scheme and value `text` names as `scheme:value`.

    An identifier of a namespace no mapping listed is kept as (`ns`, `<namespace>|<value>`)
    (adapters/namespaces.py): its bare value finds it too.
    """
    condition = or_(
        identifiers.c.value == text,
        and_(
            identifiers.c.scheme == QUALIFIED_SCHEME,
            identifiers.c.value.endswith(f"|{text}", autoescape=True),
        ),
    )
    scheme, sep, value = text.partition(":")
    if sep and value and _SCHEME.match(scheme):
        condition = or_(condition, and_(identifiers.c.value == value, identifiers.c.scheme == scheme))
    return condition


def resolve_asset_id(conn: Connection, asset_id: str) -> str | None:
    """The golden id for any id of a device (golden, merged record, minted or alias); None if unknown."""
    if conn.execute(select(assets.c.asset_id).where(assets.c.asset_id == asset_id)).first() is not None:
        return asset_id
    for query in (
        select(merges.c.merged_into).where(merges.c.record_id == asset_id),
        select(identifiers.c.asset_id).where(identifiers.c.minted_id == asset_id),
        select(aliases.c.asset_id).where(aliases.c.alias_id == asset_id),
    ):
        found = conn.execute(query).scalar()
        if found is not None:
            return str(found)
    return None


def get_asset(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    """The golden record of any id of the device, with identifiers, contracts and merged ids.

    `requested_id` says which id was asked for; None when the registry knows no such device.
    """
    golden = resolve_asset_id(conn, asset_id)
    if golden is None:
        return None
    row = conn.execute(select(assets).where(assets.c.asset_id == golden)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["identifiers"] = _identifiers_of(conn, [golden]).get(golden, [])
    out["contracts"] = load_contracts(out["contracts"])
    out["merged_from"] = list(
        conn.execute(
            select(merges.c.record_id).where(merges.c.merged_into == golden).order_by(merges.c.record_id)
        ).scalars()
    )
    out["requested_id"] = asset_id
    return out


def loan_overdue(row: dict[str, Any], now: datetime) -> bool:
    """True when the device is on loan past its due time."""
    due = row.get("loan_due_at")
    return bool(row.get("on_loan")) and due is not None and due < now


def count_assets(conn: Connection) -> int:
    """How many golden records the registry holds (decommissioned included, merged records not)."""
    return int(conn.execute(select(func.count()).select_from(assets)).scalar_one())


def asset_history(
    conn: Connection, asset_id: str, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of a golden record's events, oldest first (business time, then receive time)."""
    where = history.c.asset_id == asset_id
    total = conn.execute(select(func.count()).select_from(history).where(where)).scalar_one()
    page = conn.execute(select(history).where(where).order_by(*_HISTORY_ORDER).limit(limit).offset(offset))
    return [dict(r) for r in page.mappings()], int(total)


def list_conflicts(
    conn: Connection, *, status: str | None = "open", limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of identity conflicts (oldest first); `status` open, resolved, or None for all."""
    where = [] if status is None else [conflicts.c.status == status]
    total = conn.execute(select(func.count()).select_from(conflicts).where(*where)).scalar_one()
    order = (conflicts.c.recorded_at, conflicts.c.conflict_id)
    page = conn.execute(select(conflicts).where(*where).order_by(*order).limit(limit).offset(offset))
    return [dict(r) for r in page.mappings()], int(total)


def _identifiers_of(conn: Connection, asset_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    if not asset_ids:
        return {}
    i = identifiers.c
    query = (
        select(i.asset_id, i.scheme, i.value, i.linked_by)
        .where(in_values(conn, i.asset_id, asset_ids))
        .order_by(i.asset_id, i.scheme, i.value)
    )
    out: dict[str, list[dict[str, str]]] = {}
    for asset_id, scheme, value, linked_by in conn.execute(query):
        out.setdefault(asset_id, []).append({"scheme": scheme, "value": value, "linked_by": linked_by})
    return out


def list_places(conn: Connection) -> list[dict[str, Any]]:
    """The distinct (department code, name, location) the golden records name (FHIR Location)."""
    a = assets.c
    query = (
        select(a.department_code, a.department_name, a.location)
        .where(a.department_code.is_not(None))
        .distinct()
        .order_by(a.department_code, a.location)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def maintenance_facts(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    """For any id of a device: its golden id, home department and last preventive maintenance.

    What the device-health rules need from the registry (wired by hub.bootstrap); None when the
    registry knows no such device yet (its telemetry arrived first: it is judged without a PM).
    """
    golden = resolve_asset_id(conn, asset_id)
    if golden is None:
        return None
    t = assets.c
    row = conn.execute(
        select(t.department_code, t.department_name, t.inspection_kind, t.inspected_on).where(
            t.asset_id == golden
        )
    ).first()
    if row is None:
        return None
    pm = row.inspected_on if row.inspection_kind == "preventive_maintenance" else None
    return {
        "asset_id": golden,
        "dept_code": row.department_code,
        "dept_name": row.department_name,
        "last_pm": pm,
    }


def names_of(conn: Connection, golden_ids: Sequence[str]) -> dict[str, str]:
    """Every id each golden record answers to (itself, ids minted from its identifiers, aliases and
    records merged into it) -> that golden id: how other read models' subjects find their device."""
    out = {g: g for g in golden_ids}
    if not golden_ids:
        return out
    wanted = list(golden_ids)
    for query in (
        select(identifiers.c.minted_id, identifiers.c.asset_id).where(
            in_values(conn, identifiers.c.asset_id, wanted)
        ),
        select(aliases.c.alias_id, aliases.c.asset_id).where(in_values(conn, aliases.c.asset_id, wanted)),
        select(merges.c.record_id, merges.c.merged_into).where(in_values(conn, merges.c.merged_into, wanted)),
    ):
        for name, golden in conn.execute(query):
            out[str(name)] = str(golden)
    return out
