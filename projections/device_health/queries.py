"""Reads of the device_health model: devices with their open warnings, telemetry (raw records and
series of hour/day buckets), warnings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from projections.device_health.rollup import MICRO, fold_buckets, merge_bucket
from projections.device_health.tables import devices, rollups, telemetry, warnings

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy import Connection

_WARNING_COLUMNS = (
    "warning_id", "subject", "asset_id", "rule_id", "category", "finding_key", "severity", "window_start",
    "window_end", "baseline", "observed", "unit", "samples", "reason", "workorder_id", "cleared_at",
    "dept_code", "dept_name", "device_type",
)  # fmt: skip


def _dept_filter(table: Any, department: str | None) -> list[Any]:
    if department is None:
        return []
    return [or_(table.c.dept_code == department, table.c.dept_name == department)]


def device_health(
    conn: Connection,
    *,
    department: str | None,
    warned_only: bool,
    limit: int,
    offset: int,
    subjects: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Devices (by department, then subject) with their latest figures and open warnings."""
    d, w = devices.c, warnings.c
    where = _dept_filter(devices, department)
    if subjects is not None:
        where.append(d.subject.in_(list(subjects)))
    if warned_only:
        where.append(d.subject.in_(select(w.subject).where(w.cleared_at.is_(None))))
    total = int(conn.execute(select(func.count()).select_from(devices).where(*where)).scalar_one())
    rows = [
        dict(r)
        for r in conn.execute(
            select(devices)
            .where(*where)
            .order_by(d.dept_code, d.dept_name, d.subject)
            .limit(limit)
            .offset(offset)
        ).mappings()
    ]
    open_by = open_warnings_of(conn, [r["subject"] for r in rows])
    for row in rows:
        row["warnings"] = open_by.get(row["subject"], [])
    return rows, total


def open_warnings_of(conn: Connection, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Open warnings by the name asked for: a device's subject or the golden asset id."""
    if not names:
        return {}
    w = warnings.c
    wanted = set(names)
    query = (
        select(*(w[c] for c in _WARNING_COLUMNS))
        .where(w.cleared_at.is_(None), or_(w.subject.in_(list(wanted)), w.asset_id.in_(list(wanted))))
        .order_by(w.window_start, w.warning_id)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query).mappings():
        for name in {row["subject"], row["asset_id"]} & wanted:
            out.setdefault(name, []).append(dict(row))
    return out


def list_warnings(
    conn: Connection,
    *,
    department: str | None,
    state: str,
    category: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Warnings, newest first: `open`, `cleared` or `all`."""
    w = warnings.c
    where = _dept_filter(warnings, department)
    if state == "open":
        where.append(w.cleared_at.is_(None))
    elif state == "cleared":
        where.append(w.cleared_at.is_not(None))
    if category is not None:
        where.append(w.category == category)
    total = int(conn.execute(select(func.count()).select_from(warnings).where(*where)).scalar_one())
    query = (
        select(*(w[c] for c in _WARNING_COLUMNS))
        .where(*where)
        .order_by(w.window_end.desc(), w.warning_id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in conn.execute(query).mappings()], total


def telemetry_of(
    conn: Connection,
    subjects: Sequence[str],
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The records of the devices `subjects` name (one device may have several), newest first."""
    t = telemetry.c
    where: list[Any] = [t.subject.in_(list(subjects))]
    if start is not None:
        where.append(t.at >= start)
    if end is not None:
        where.append(t.at < end)
    query = select(telemetry).where(*where).order_by(t.at.desc(), t.event_id).limit(limit)
    out = []
    for row in conn.execute(query).mappings():
        record = dict(row)
        for key in ("alarms", "errors", "metrics"):
            record[key] = json.loads(record[key])
        out.append(record)
    return out


def devices_named(conn: Connection, names: Sequence[str]) -> list[dict[str, Any]]:
    """The device rows whose subject is one of `names` (the ids a golden record answers to)."""
    d = devices.c
    return [dict(r) for r in conn.execute(select(devices).where(d.subject.in_(list(names)))).mappings()]


def telemetry_series(
    conn: Connection,
    subjects: Sequence[str],
    *,
    metrics: Sequence[str],
    start: datetime,
    end: datetime,
    grain: str,
    tz: ZoneInfo,
) -> list[dict[str, Any]]:
    """Each metric's buckets (site-local hours or days starting in [start, end)) over the devices
    `subjects` name: count, min, max, mean, sum, last. Days the raw window no longer holds come
    from the rollups, recent ones are folded from the raw records the same way (a record is in one
    or the other, never both), so a range of any length reads at most one row per bucket and metric."""
    wanted = set(metrics)
    u, t = rollups.c, telemetry.c
    found: dict[tuple[str, datetime], dict[str, Any]] = {}

    def add(row: dict[str, Any]) -> None:
        key = (row["metric"], row["bucket"])
        found[key] = merge_bucket(found[key], row) if key in found else row

    query = select(rollups).where(
        u.subject.in_(list(subjects)), u.grain == grain, u.metric.in_(sorted(wanted)),
        u.bucket >= start, u.bucket < end,
    )  # fmt: skip
    for stored in conn.execute(query.order_by(u.subject, u.bucket, u.metric)).mappings():
        add(dict(stored))
    # The raw records of buckets starting in the range (a bucket's records all lie before `end`'s bucket).
    raw = select(telemetry).where(t.subject.in_(list(subjects)), t.at >= start, t.at < end)
    records = [dict(r) for r in conn.execute(raw.order_by(t.at, t.event_id)).mappings()]
    for folded in fold_buckets(records, tz, grains=(grain,), wanted=wanted).values():
        add(folded)
    out: dict[str, dict[str, Any]] = {}
    for (metric, bucket), r in sorted(found.items()):
        series = out.setdefault(metric, {"metric": metric, "unit": None, "buckets": []})
        series["unit"] = r["unit"] or series["unit"]  # the latest bucket's
        total = r["sum_micro"] / MICRO
        series["buckets"].append({
            "bucket": bucket, "count": r["count"], "min": r["min"], "max": r["max"],
            "mean": total / r["count"], "sum": total, "last": r["last"], "last_at": r["last_at"],
        })  # fmt: skip
    return [out[m] for m in metrics if m in out]


def raw_since(conn: Connection, subjects: Sequence[str]) -> datetime | None:
    """The earliest raw record the devices `subjects` name still keep (older ones are rolled up)."""
    t = telemetry.c
    found: datetime | None = conn.execute(
        select(func.min(t.at)).where(t.subject.in_(list(subjects)))
    ).scalar_one()
    return found
