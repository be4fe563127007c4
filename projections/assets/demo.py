"""The asset registry's tables for `hub demo`: what the sample data fills, in a few short tables."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from projections.assets import availability as avail
from projections.assets.tables import assets, conflicts, merges

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import Connection

Table = tuple[str, list[str], list[list[str]]]
ROWS = 8
VENTILATOR = "呼吸机"


def summary_tables(conn: Connection, today: date) -> list[Table]:
    return [_ventilators(conn, today), _loans(conn, today), _identity(conn), _calibration(conn, today)]


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _ventilators(conn: Connection, today: date) -> Table:
    depts = avail.summary(conn, device_type=VENTILATOR, category=None, today=today)
    columns = ["department", *avail.CLASSES, "total", "pool", "pool ready"]
    rows = [
        [
            d["department_name"] or d["department_code"] or "(none)",
            *(str(d[c]) for c in avail.CLASSES),
            str(d["total"]),
            str(d["pool"]),
            str(d["pool_ready"]),
        ]
        for d in depts
    ]
    totals = [sum(d[c] for d in depts) for c in (*avail.CLASSES, "total", "pool", "pool_ready")]
    rows.append(["all departments", *(str(n) for n in totals)])
    return f"Emergency availability of {VENTILATOR} as of {today.isoformat()}", columns, rows


def _loans(conn: Connection, today: date) -> Table:
    a = assets.c
    now = datetime.combine(today, time(), tzinfo=UTC)
    query = (
        select(a.asset_id, a.name, a.department_name, a.loan_borrower_name, a.loan_responsible, a.loan_due_at)
        .where(a.on_loan.is_(True))
        .order_by(a.loan_due_at, a.asset_id)
        .limit(ROWS)
    )
    rows = [
        [
            asset_id,
            _text(name),
            _text(home),
            _text(borrower),
            _text(person),
            due.date().isoformat() if due else "",
            "overdue" if due is not None and due < now else "",
        ]
        for asset_id, name, home, borrower, person, due in conn.execute(query)
    ]
    total = conn.execute(select(func.count()).where(a.on_loan.is_(True))).scalar_one()
    title = f"Devices on loan ({total}; overdue as of {today.isoformat()})"
    return title, ["asset", "name", "department", "borrower", "responsible", "due", ""], rows


def _identity(conn: Connection) -> Table:
    a = assets.c
    provisional = conn.execute(select(func.count()).where(a.provisional.is_(True))).scalar_one()
    examples = conn.execute(
        select(a.asset_id).where(a.provisional.is_(True)).order_by(a.asset_id).limit(3)
    ).scalars()
    merged = conn.execute(select(func.count()).select_from(merges)).scalar_one()
    merged_examples = conn.execute(
        select(merges.c.record_id, merges.c.merged_into).order_by(merges.c.record_id).limit(3)
    )
    open_conflicts = conn.execute(
        select(func.count()).select_from(conflicts).where(conflicts.c.status == "open")
    ).scalar_one()
    conflict_examples = conn.execute(
        select(conflicts.c.scheme, conflicts.c.value).where(conflicts.c.status == "open").limit(3)
    )
    rows = [
        ["provisional records (no registration yet)", str(provisional), ", ".join(examples)],
        [
            "records merged into a golden record",
            str(merged),
            ", ".join(f"{r} → {g}" for r, g in merged_examples),
        ],
        ["open identity conflicts", str(open_conflicts), ", ".join(f"{s} {v}" for s, v in conflict_examples)],
    ]
    return "Identity resolution", ["", "count", "examples"], rows


def _calibration(conn: Connection, today: date) -> Table:
    a = assets.c
    bad = or_(a.calibration_result == "failed", a.calibration_valid_until < today)
    query = (
        select(a.asset_id, a.name, a.department_name, a.calibration_valid_until, a.calibration_result)
        .where(bad, a.decommissioned.is_(False))
        .order_by(a.calibration_valid_until, a.asset_id)
        .limit(ROWS)
    )
    rows = [[i, _text(n), _text(d), _text(v), _text(r)] for i, n, d, v, r in conn.execute(query)]
    total = conn.execute(select(func.count()).where(bad, a.decommissioned.is_(False))).scalar_one()
    title = f"Calibration expired or failed as of {today.isoformat()} ({total})"
    return title, ["asset", "name", "department", "valid until", "result"], rows
