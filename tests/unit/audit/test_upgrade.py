"""A ledger table from before record hashes gets its column and index when the ledger starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from projections.audit.ledger import AuditLedger, entries
from projections.audit.seals import seal_key
from projections.runtime.tracking import ensure_tables
from replay.audit.verify import verify
from tests.unit.audit.ledger_helpers import fill, place, stream

if TYPE_CHECKING:
    from sqlalchemy import Engine

KEY = seal_key(b"upgrade")


def test_old_table_is_upgraded_and_then_verifies(engine: Engine) -> None:
    """Dropping record_hash and the offset index (the old shape), then starting the ledger, restores both."""
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX audit_ledger_entries_offset"))
        conn.execute(text(f"ALTER TABLE {entries.name} DROP COLUMN record_hash"))
    ensure_tables(engine, AuditLedger(seal_key=KEY))
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns(entries.name)}
        indexes = {i["name"] for i in inspect(conn).get_indexes(entries.name)}
    assert "record_hash" in columns
    assert "audit_ledger_entries_offset" in indexes
    fill(engine, place(stream(30)), ledger=AuditLedger(seal_key=KEY))
    report = verify(engine, seal_key=KEY)
    assert report.intact, report.findings
    assert report.entries == 30
