"""Maintenance KPIs per device, category or department, computed by queries (no projection of their own).

They read the `work_orders` projection's tables only: its work orders (downtime intervals,
repair times, costs), its copy of the asset grouping fields and crosswalk, and its `asset.used`
intervals. One projection owns all the inputs, so a rebuild of it rebuilds the KPIs, and there is
no second fold of the work-order lifecycle to keep in step.

Definitions, over a period [start, end) of length P, for a group of n devices:
- devices: assets known to the projection (not decommissioned) plus any asset with work orders
  or usage in the period;
- downtime: the union, per device, of its work orders' down intervals clipped to the period (an
  open work order is down until `now`; two reports of one outage count once);
- uptime % = 100 x (1 - downtime / (n x P));
- repairs: work orders requested in the period, cancelled ones excepted;
- MTTR (hours): mean repair time (downtime minutes) of the work orders completed in the period;
- MTBF (hours): (n x P - downtime) / repairs; none without repairs;
- maintenance cost: cost of the work orders completed in the period, in the configured currency;
- utilisation % = 100 x usage time in the period / (n x P), usage intervals clipped to the period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import and_, case, func, literal, or_, select

from projections.runtime.sqltypes import UtcDateTime
from projections.runtime.upsert import chunks, in_values
from projections.work_orders.tables import assets, identifiers, orders, usage

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import ColumnElement, Connection

GroupBy = Literal["device", "category", "department"]
_JULIAN_UNIX_EPOCH = 2440587.5
_SECONDS_PER_DAY = 86400.0
_UNKNOWN = "\uffff"  # the group of devices without the grouping field; sorted last


@dataclass(slots=True)
class _Tally:
    """What one device or group adds up to over the period."""

    devices: int = 0
    down_s: float = 0.0
    repairs: int = 0
    completed: int = 0
    repair_minutes: int = 0
    cost_minor: int = 0
    used_s: float = 0.0
    uses: int = 0

    def add(self, other: _Tally) -> None:
        self.devices += other.devices
        self.down_s += other.down_s
        self.repairs += other.repairs
        self.completed += other.completed
        self.repair_minutes += other.repair_minutes
        self.cost_minor += other.cost_minor
        self.used_s += other.used_s
        self.uses += other.uses


def _epoch(conn: Connection, value: ColumnElement[Any]) -> ColumnElement[float]:
    """Seconds since 1970 of a UTC timestamp column or parameter."""
    if conn.dialect.name == "sqlite":
        return (func.julianday(value) - _JULIAN_UNIX_EPOCH) * _SECONDS_PER_DAY
    return cast("ColumnElement[float]", func.extract("epoch", value))


def _least(conn: Connection, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.min(*values) if conn.dialect.name == "sqlite" else func.least(*values)


def _greatest(conn: Connection, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.max(*values) if conn.dialect.name == "sqlite" else func.greatest(*values)


def _stamp(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UtcDateTime())


def compute_kpis(
    conn: Connection,
    *,
    group_by: GroupBy,
    start: datetime,
    end: datetime,
    now: datetime,
    currency: str = "CNY",
    department: str | None = None,
) -> list[dict[str, Any]]:
    """KPI rows for the period, one per device / category / department, ordered by their key.

    With `department` (a code or a name), only the devices of that department count.
    """
    period_s = (end - start).total_seconds()
    if period_s <= 0:
        return []
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    _downtime(conn, tallies, start, end, min(end, now))
    _repairs(conn, tallies, start, end)
    _usage(conn, tallies, start, end)
    dims = _dimensions(conn, tallies)
    for asset_id, dim in dims.items():
        if not dim["decommissioned"]:
            tallies.setdefault(asset_id, _Tally())
    groups: dict[str, _Tally] = defaultdict(_Tally)
    labels: dict[str, dict[str, Any]] = {}
    for asset_id in sorted(tallies):
        tally, dim = tallies[asset_id], dims.get(asset_id, {})
        if department is not None and department not in (
            dim.get("department_code"),
            dim.get("department_name"),
        ):
            continue
        tally.devices = 1
        key, label = _group_of(group_by, asset_id, dim)
        groups[key].add(tally)
        known = labels.setdefault(key, label)
        # The first device's wording names the group; a later one fills what it lacked.
        for field_name, value in label.items():
            if known[field_name] is None:
                known[field_name] = value
    return [
        _row(group_by, labels[k], t=groups[k], period_s=period_s, currency=currency)
        for k in sorted(groups, key=lambda k: (k == _UNKNOWN, k))
    ]


def _group_of(group_by: GroupBy, asset_id: str, dim: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The group key of a device (a code, else a name) and the labels of its row."""
    get = dim.get
    if group_by == "device":
        label = {"key": asset_id, "name": get("name"), "asset_id": asset_id}
        label.update(category_code=get("category_code"), department_code=get("department_code"))
        return asset_id, label
    code, name = get(f"{group_by}_code"), get(f"{group_by}_name")
    key = code or name or _UNKNOWN
    label = {
        "key": code or name,
        "name": name,
        "asset_id": None,
        "category_code": None,
        "department_code": None,
    }
    label[f"{group_by}_code"] = code
    return key, label


def _row(
    group_by: GroupBy, label: dict[str, Any], *, t: _Tally, period_s: float, currency: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"group_by": group_by, **label}
    capacity = t.devices * period_s
    up_s = max(capacity - t.down_s, 0.0)
    out.update(
        devices=t.devices,
        period_hours=round(period_s / 3600, 2),
        downtime_hours=round(t.down_s / 3600, 2),
        uptime_pct=round(100 * up_s / capacity, 2),
        repairs=t.repairs,
        completed_repairs=t.completed,
        mttr_hours=round(t.repair_minutes / t.completed / 60, 2) if t.completed else None,
        mtbf_hours=round(up_s / t.repairs / 3600, 2) if t.repairs else None,
        maintenance_cost=Decimal(t.cost_minor).scaleb(-2),
        currency=currency,
        usage_hours=round(t.used_s / 3600, 2),
        utilisation_pct=round(min(100.0, 100 * t.used_s / capacity), 2),
        uses=t.uses,
    )
    return out


def _resolved(ref: ColumnElement[str]) -> tuple[ColumnElement[str], Any]:
    """The asset a reference resolves to through the crosswalk, and the crosswalk alias to join."""
    link = identifiers.alias("kpi_link")
    return func.coalesce(link.c.asset_id, ref), link


def _downtime(
    conn: Connection, tallies: dict[str, _Tally], start: datetime, end: datetime, open_until: datetime
) -> None:
    """Per device, the length of the union of its down intervals within [start, end).

    Open intervals end at `open_until`. The union is computed in SQL with a window: over a
    device's intervals sorted by start, each adds what reaches past the furthest end before it,
    so a device's outage reported twice (two systems, two work orders) counts once, and only one
    row per device leaves the database.
    """
    o = orders.c
    asset_id, link = _resolved(o.asset_ref)
    lo = _epoch(conn, _greatest(conn, o.down_from, _stamp(start)))
    hi = _epoch(conn, _least(conn, func.coalesce(o.down_to, _stamp(open_until)), _stamp(end)))
    spans = (
        select(asset_id.label("device"), lo.label("lo"), hi.label("hi"))
        .select_from(orders.outerjoin(link, link.c.minted_id == o.asset_ref))
        .where(
            o.asset_ref.is_not(None),
            o.down_from.is_not(None),
            o.down_from < end,
            or_(o.down_to.is_(None), o.down_to > start),
        )
        .cte("kpi_spans")
    )
    reach = (
        func.max(spans.c.hi)
        .over(partition_by=spans.c.device, order_by=(spans.c.lo, spans.c.hi), rows=(None, -1))
        .label("reach")
    )
    ordered = select(spans.c.device, spans.c.lo, spans.c.hi, reach).subquery("kpi_ordered")
    added = _greatest(
        conn,
        ordered.c.hi - _greatest(conn, ordered.c.lo, func.coalesce(ordered.c.reach, ordered.c.lo)),
        literal(0.0),
    )
    query = select(ordered.c.device, func.sum(added)).group_by(ordered.c.device)
    for device, seconds in conn.execute(query):
        tallies[device].down_s = float(seconds or 0.0)


def _repairs(conn: Connection, tallies: dict[str, _Tally], start: datetime, end: datetime) -> None:
    o = orders.c
    asset_id, link = _resolved(o.asset_ref)
    requested = and_(o.requested_at >= start, o.requested_at < end, o.status != "cancelled")
    completed = and_(o.completed_at >= start, o.completed_at < end)
    query = (
        select(
            asset_id,
            func.sum(case((requested, 1), else_=0)),
            func.sum(case((completed, 1), else_=0)),
            func.sum(case((completed, func.coalesce(o.downtime_minutes, 0)), else_=0)),
            func.sum(case((completed, func.coalesce(o.cost_minor, 0)), else_=0)),
        )
        .select_from(orders.outerjoin(link, link.c.minted_id == o.asset_ref))
        .where(o.asset_ref.is_not(None), or_(requested, completed))
        .group_by(asset_id)
    )
    for device, repairs, done, minutes, cost in conn.execute(query):
        t = tallies[device]
        t.repairs, t.completed, t.repair_minutes, t.cost_minor = (
            int(repairs),
            int(done),
            int(minutes),
            int(cost),
        )


def _usage(conn: Connection, tallies: dict[str, _Tally], start: datetime, end: datetime) -> None:
    u = usage.c
    asset_id, link = _resolved(u.asset_ref)
    lo = _greatest(conn, u.started_at, _stamp(start))
    hi = _least(conn, func.coalesce(u.ended_at, u.started_at), _stamp(end))
    seconds = _greatest(conn, _epoch(conn, hi) - _epoch(conn, lo), literal(0.0))
    started = and_(u.started_at >= start, u.started_at < end)
    query = (
        select(asset_id, func.sum(seconds), func.sum(case((started, 1), else_=0)))
        .select_from(usage.outerjoin(link, link.c.minted_id == u.asset_ref))
        .where(u.started_at < end, func.coalesce(u.ended_at, u.started_at) >= start)
        .group_by(asset_id)
    )
    for device, used_s, uses in conn.execute(query):
        tallies[device].used_s, tallies[device].uses = float(used_s or 0), int(uses)


def _dimensions(conn: Connection, tallies: dict[str, _Tally]) -> dict[str, dict[str, Any]]:
    """Grouping fields of every known asset (the device universe) and of the devices with figures."""
    a = assets.c
    columns = (a.asset_id, a.name, a.category_code, a.category_name, a.department_code, a.department_name)
    names = [c.name for c in columns] + ["decommissioned"]
    # Plain tuples zipped with the names: a RowMapping per row costs more than the query here.
    active = select(*columns, a.decommissioned).where(a.decommissioned.is_(False))
    out = {row[0]: dict(zip(names, row, strict=True)) for row in conn.execute(active)}
    missing = sorted(set(tallies) - set(out))
    for chunk in chunks(conn, missing):
        query = select(*columns, a.decommissioned).where(in_values(conn, a.asset_id, chunk))
        out.update((row[0], dict(zip(names, row, strict=True))) for row in conn.execute(query))
    return out
