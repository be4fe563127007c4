"""Audited reads on the ledger (`audit.access_recorded` entries): a page of them, or one by event id.

Read-only; the FHIR facade serves them as AuditEvent to auditors. Each entry is the event as the
ledger chained it (its canonical JSON), decoded; newest first.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from projections.audit.ledger import entries

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection

ACCESS_TYPE = "audit.access_recorded"


def list_access(
    conn: Connection,
    *,
    key_id: str | None = None,
    recorded_from: datetime | None = None,
    recorded_to: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of access events (newest first) and the total; `key_id` is the reading key's id."""
    e = entries.c
    where = [e.event_type == ACCESS_TYPE]
    if key_id is not None:
        where.append(e.subject == key_id)
    if recorded_from is not None:
        where.append(e.recorded_at >= recorded_from)
    if recorded_to is not None:
        where.append(e.recorded_at < recorded_to)
    total = conn.execute(select(func.count()).select_from(entries).where(*where)).scalar_one()
    page = conn.execute(
        select(e.entry_bytes)
        .where(*where)
        .order_by(e.recorded_at.desc(), e.event_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [json.loads(row.entry_bytes) for row in page], int(total)


def get_access(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """The access event `event_id`, or None."""
    e = entries.c
    found = conn.execute(
        select(e.entry_bytes).where(e.event_type == ACCESS_TYPE, e.event_id == event_id)
    ).first()
    return None if found is None else dict(json.loads(found.entry_bytes))
