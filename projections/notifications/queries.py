"""Queries over the `notifications` read model: a caller's inbox, one notification, its receipts.

A notification's department is resolved when read: the stock location it names, else the
reporting department of its work order, else the newest department of its device. Department
scope and `subject_department` recipients both use that department.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from projections.notifications.tables import (
    asset_departments,
    deliveries,
    notifications,
    receipts,
    recipients,
    workorder_departments,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Connection

State = Literal["held", "unread", "escalated", "read", "expired"]
STATES: tuple[State, ...] = ("held", "unread", "escalated", "read", "expired")


@dataclass(frozen=True, slots=True)
class Reader:
    """Who asks: an API key's role, label (the person an on-call list names) and department."""

    role: str
    person: str | None = None
    department: str | None = None


def state_of(row: dict[str, Any], read: bool) -> State:
    if read:
        return "read"
    if row["expired_at"] is not None:
        return "expired"
    if row["sent_at"] is None:
        return "held"
    return "escalated" if row["level"] > 0 else "unread"


def _departments(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Fill `department_code`/`department_name` of each row (see the module docstring)."""
    wos = {r["workorder_id"] for r in rows if r["workorder_id"]}
    assets = {r["asset_id"] for r in rows if r["asset_id"]}
    wo_dept: dict[str, tuple[str | None, str | None]] = {}
    if wos:
        w = workorder_departments.c
        for wid, code, name in conn.execute(
            select(w.workorder_id, w.dept_code, w.dept_name).where(w.workorder_id.in_(wos))
        ):
            wo_dept[wid] = (code, name)
    asset_dept: dict[str, tuple[str | None, str | None]] = {}
    if assets:
        a = asset_departments.c
        query = (
            select(a.asset_id, a.dept_code, a.dept_name)
            .where(a.asset_id.in_(assets))
            .order_by(a.asset_id, a.occurred_at, a.event_id)
        )
        for aid, code, name in conn.execute(query):
            asset_dept[aid] = (code, name)  # ordered by time: the newest is the last written
    for r in rows:
        code, name = r["dept_code"], r["dept_name"]
        if code is None and name is None:
            code, name = wo_dept.get(r["workorder_id"]) or asset_dept.get(r["asset_id"]) or (None, None)
        r["department_code"], r["department_name"] = code, name


def _addressed(row: dict[str, Any], to: Iterable[tuple[int, str, str]], reader: Reader) -> bool:
    dept = reader.department
    mine = {row["department_code"], row["department_name"]} - {None}
    for _, kind, value in to:
        if kind == "role" and value == reader.role:
            return True
        if kind == "person" and reader.person and value == reader.person:
            return True
        if kind == "department" and dept is not None and value == dept:
            return True
        if kind == "subject_department" and dept is not None and dept in mine:
            return True
    return False


def list_notifications(
    conn: Connection,
    reader: Reader,
    *,
    scope_department: str | None,
    inbox: bool = True,
    states: Iterable[State] = STATES,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Notifications addressed to `reader` (or, `inbox=False`, every one in scope), newest first."""
    rows = [
        dict(r)
        for r in conn.execute(
            select(notifications).order_by(
                notifications.c.occurred_at.desc(), notifications.c.notification_id
            )
        ).mappings()
    ]
    _departments(conn, rows)
    if scope_department is not None:
        rows = [r for r in rows if scope_department in (r["department_code"], r["department_name"])]
    ids = [r["notification_id"] for r in rows]
    to = _recipients(conn, ids)
    read = _receipts(conn, ids)
    wanted = set(states)
    out = []
    for r in rows:
        nid = r["notification_id"]
        r["state"] = state_of(r, nid in read)
        if r["state"] not in wanted:
            continue
        if inbox and not _addressed(r, to.get(nid, []), reader):
            continue
        r["recipients"] = [{"level": lv, "kind": k, "value": v} for lv, k, v in to.get(nid, [])]
        r["receipts"] = read.get(nid, [])
        out.append(r)
    page = out[offset : offset + limit]
    posted = _deliveries(conn, [r["notification_id"] for r in page])
    for r in page:
        _with_deliveries(r, posted.get(r["notification_id"], []))
    return page, len(out)


def get_notification(conn: Connection, notification_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(notifications).where(notifications.c.notification_id == notification_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    out = dict(row)
    _departments(conn, [out])
    to = _recipients(conn, [notification_id])
    read = _receipts(conn, [notification_id])
    out["state"] = state_of(out, notification_id in read)
    out["recipients"] = [{"level": lv, "kind": k, "value": v} for lv, k, v in to.get(notification_id, [])]
    out["receipts"] = read.get(notification_id, [])
    _with_deliveries(out, _deliveries(conn, [notification_id]).get(notification_id, []))
    return out


def _with_deliveries(row: dict[str, Any], posted: list[dict[str, Any]]) -> None:
    """`deliveries` (each channel's outcome per level) and `delivery_failed`: a channel's post
    failed after its retries and none of its later posts (a higher level) got through."""
    row["deliveries"] = posted
    last: dict[str, str] = {}
    for d in posted:  # ordered by level
        last[d["channel"]] = d["outcome"]
    row["delivery_failed"] = "failed" in last.values()


def _deliveries(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return out
    c = deliveries.c
    query = select(c.notification_id, c.channel, c.level, c.outcome, c.attempts, c.status_code, c.error, c.at)
    query = query.where(c.notification_id.in_(ids)).order_by(c.notification_id, c.level, c.channel)
    for r in conn.execute(query).mappings():
        row = dict(r)
        out.setdefault(row.pop("notification_id"), []).append(row)
    return out


def addressed_to(row: dict[str, Any], reader: Reader) -> bool:
    """Whether `reader` is among the notification's recipients (at any level reached)."""
    return _addressed(row, [(r["level"], r["kind"], r["value"]) for r in row["recipients"]], reader)


def _recipients(conn: Connection, ids: list[str]) -> dict[str, list[tuple[int, str, str]]]:
    out: dict[str, list[tuple[int, str, str]]] = {}
    if not ids:
        return out
    c = recipients.c
    query = select(c.notification_id, c.level, c.kind, c.value).order_by(
        c.notification_id, c.level, c.kind, c.value
    )
    for nid, level, kind, value in conn.execute(query.where(c.notification_id.in_(ids))):
        out.setdefault(nid, []).append((level, kind, value))
    return out


def _receipts(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return out
    c = receipts.c
    query = select(c.notification_id, c.key_id, c.reader, c.role, c.read_at).order_by(c.read_at, c.event_id)
    for nid, key_id, reader, role, read_at in conn.execute(query.where(c.notification_id.in_(ids))):
        out.setdefault(nid, []).append({"key_id": key_id, "reader": reader, "role": role, "read_at": read_at})
    return out


def unread_count(conn: Connection) -> int:
    n = notifications.c
    read = select(receipts.c.notification_id)
    query = select(func.count()).where(
        n.sent_at.is_not(None), n.expired_at.is_(None), n.notification_id.not_in(read)
    )
    return int(conn.execute(query).scalar_one())
