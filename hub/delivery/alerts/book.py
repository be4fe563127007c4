"""Alerts at rest: table `hub_alerts` in the read-model database, one row per raise.

An open alert holds `open_key` = its alert id (unique), so two `hub serve` nodes judging the
same rule raise it once: the second insert conflicts and that node publishes nothing. Clearing
sets `cleared_at` and frees the key. `raised_sent` / `cleared_sent` record that the event is on
the bus: a crash between the row and the publish is repaired on the next check (same event id).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from projections.runtime.db import write_transaction
from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Engine, Row

METADATA = MetaData()
alerts_table = Table(
    "hub_alerts",
    METADATA,
    Column("id", String(36), primary_key=True),  # the raise event's id
    Column("alert_id", String(200), nullable=False),
    Column("open_key", String(200), unique=True),  # = alert_id while open, NULL once cleared
    Column("rule", String(100), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("text", String(500), nullable=False),
    Column("target", String(100)),
    Column("value", Float),
    Column("threshold", Float),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("cleared_at", UtcDateTime()),
    Column("cleared_text", String(500)),
    Column("cleared_value", Float),
    Column("raised_sent", Boolean, nullable=False, default=False),
    Column("cleared_sent", Boolean, nullable=False, default=False),
    Index("hub_alerts_raised", "raised_at"),
)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    alert_id: str
    rule: str
    kind: str
    severity: str
    title: str
    text: str
    target: str | None
    value: float | None
    threshold: float | None
    raised_at: datetime
    cleared_at: datetime | None
    cleared_text: str | None
    cleared_value: float | None
    raised_sent: bool
    cleared_sent: bool

    @property
    def open(self) -> bool:
        return self.cleared_at is None


class AlertBook:
    """Raised and cleared alerts. Synchronous: async callers use `asyncio.to_thread`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ready = False
        self._lock = threading.Lock()

    def ensure_tables(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                METADATA.create_all(self._engine, checkfirst=True)
            except DBAPIError:
                if not inspect(self._engine).has_table(alerts_table.name):
                    raise
            self._ready = True

    def open_alert(self, alert_id: str) -> Alert | None:
        self.ensure_tables()
        with self._engine.connect() as conn:
            row = conn.execute(select(alerts_table).where(alerts_table.c.open_key == alert_id)).first()
        return None if row is None else _alert(row)

    def raise_alert(self, alert: Alert) -> bool:
        """Insert an open alert; False when it is already open (raised by another node)."""
        self.ensure_tables()
        values = {k: getattr(alert, k) for k in Alert.__dataclass_fields__}
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(insert(alerts_table).values(**values, open_key=alert.alert_id))
        except IntegrityError:
            return False
        return True

    def clear_alert(self, alert_id: str, at: datetime, text: str, value: float | None) -> Alert | None:
        """Close the open alert; None when none was open (another node cleared it)."""
        t = alerts_table
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(t).where(t.c.open_key == alert_id)).first()
            if row is None:
                return None
            conn.execute(
                update(t)
                .where(t.c.id == row.id)
                .values(open_key=None, cleared_at=at, cleared_text=text[:500], cleared_value=value)
            )
        return self.get(row.id)

    def mark_sent(self, row_id: str, *, cleared: bool) -> None:
        t = alerts_table
        column = "cleared_sent" if cleared else "raised_sent"
        with write_transaction(self._engine) as conn:
            conn.execute(update(t).where(t.c.id == row_id).values(**{column: True}))

    def unsent(self) -> list[Alert]:
        """Rows whose raise or clear event may not be on the bus yet."""
        self.ensure_tables()
        t = alerts_table
        query = select(t).where(
            (t.c.raised_sent.is_(False)) | ((t.c.cleared_at.is_not(None)) & (t.c.cleared_sent.is_(False)))
        )
        with self._engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query.order_by(t.c.raised_at))]

    def get(self, row_id: str) -> Alert | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(alerts_table).where(alerts_table.c.id == row_id)).first()
        return None if row is None else _alert(row)

    def list(self, *, open_only: bool, limit: int = 50, offset: int = 0) -> tuple[list[Alert], int]:
        """Newest raise first; open ones only, or every alert ever raised."""
        self.ensure_tables()
        t = alerts_table
        where = t.c.cleared_at.is_(None) if open_only else t.c.id.is_not(None)
        with self._engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
            rows = conn.execute(
                select(t).where(where).order_by(t.c.raised_at.desc(), t.c.id).limit(limit).offset(offset)
            ).all()
        return [_alert(r) for r in rows], int(total)


def _alert(row: Row[Any]) -> Alert:
    return Alert(**{k: getattr(row, k) for k in Alert.__dataclass_fields__})
