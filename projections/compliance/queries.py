"""The query the API serves over the `compliance` tables: what is due, relative to a given date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from projections.compliance.tables import items

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import ColumnElement, Connection

_HIDDEN = frozenset({"due_notice", "overdue_notice", "scheduled", "active", "site"})
_COLUMNS = [c for c in items.columns if c.name not in _HIDDEN]


@dataclass(frozen=True, slots=True)
class DueFilter:
    """Obligations due on or before `today + within_days` (overdue ones included), of active assets.

    `department` is a code or name; `kind` a compliance kind; `overdue` True keeps only those
    past due (due date before `today`), False only those not yet past due; `projected` True keeps
    only the due dates the hub projected from a start of service (no record of the kind yet: what
    the department has to confirm), False only confirmed ones.
    """

    today: date
    within_days: int = 30
    department: str | None = None
    kind: str | None = None
    overdue: bool | None = None
    projected: bool | None = None
    overdue_within_days: int | None = None  # overdue by at most this many days (None: however long)

    def conditions(self) -> list[ColumnElement[bool]]:
        c = items.c
        out: list[ColumnElement[bool]] = [
            c.active.is_(True),
            c.due_on.is_not(None),
            c.due_on <= self.today + timedelta(days=self.within_days),
        ]
        if self.department is not None:
            out.append(or_(c.department_code == self.department, c.department_name == self.department))
        if self.kind is not None:
            out.append(c.kind == self.kind)
        if self.overdue is True:
            out.append(c.due_on < self.today)
        elif self.overdue is False:
            out.append(c.due_on >= self.today)
        if self.projected is not None:
            out.append(c.projected.is_(self.projected))
        if self.overdue_within_days is not None:
            out.append(c.due_on >= self.today - timedelta(days=self.overdue_within_days))
        return out


def list_due(
    conn: Connection, where: DueFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of due obligations, soonest (most overdue) first, and the total over all pages."""
    conditions = where.conditions()
    total = conn.execute(select(func.count()).select_from(items).where(*conditions)).scalar_one()
    query = (
        select(*_COLUMNS)
        .where(*conditions)
        .order_by(items.c.due_on, items.c.asset_id, items.c.kind)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["days_left"] = (row["due_on"] - where.today).days
        row["overdue"] = row["due_on"] < where.today
    return rows, int(total)


def count_due_groups(conn: Connection, where: DueFilter) -> list[dict[str, Any]]:
    """How many obligations match `where`, per kind, overdue or not, projected or confirmed."""
    c = items.c
    overdue = c.due_on < where.today
    query = (
        select(c.kind, overdue.label("overdue"), c.projected, func.count().label("count"))
        .where(*where.conditions())
        .group_by(c.kind, overdue, c.projected)
        .order_by(overdue.desc(), c.kind, c.projected)
    )
    return [
        {"kind": r.kind, "overdue": bool(r.overdue), "projected": bool(r.projected), "count": int(r[3])}
        for r in conn.execute(query)
    ]
