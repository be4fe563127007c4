"""cross_check_log: the ledger holds the log's events, in the log's order, per partition."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert

from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord
from projections.audit.ledger import AuditLedger
from projections.runtime.db import write_transaction
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import projection_tracking
from replay.audit.chain import Tamper
from replay.audit.log import cross_check_log
from schemas.catalogue import dump_event
from tests.unit.audit.ledger_helpers import (
    delete_entry,
    longest_chain,
    place,
    rows,
    set_columns,
    stream,
)
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy import Engine

PREFIX = "h1."
# The `bus` fixture puts a poison record on the log on purpose.
pytestmark = pytest.mark.wire_unchecked


@pytest.fixture
async def bus(tmp_path: Path, sqlite_engine: Engine) -> AsyncIterator[EmbeddedBus]:
    """A prefixed embedded bus holding 60 events, one re-published and one poison record; the ledger built from it."""
    b = EmbeddedBus(tmp_path / "bus.db")
    await b.start()
    await b.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS], PREFIX)
    events = stream(60)
    for event in [*events, events[7]]:
        topic = PREFIX + place([event])[0].topic
        await b.publish(topic, [OutRecord(event.subject, dump_event(event))])
    await b.publish(f"{PREFIX}canonical.asset.v1", [OutRecord("A1", b"not an event")])
    runner = ProjectionRunner(AuditLedger(), b, sqlite_engine, prefix=PREFIX)
    assert await runner.run_until_idle() == 60
    await runner.close()
    yield b
    await b.close()


class TestCrossCheck:
    async def test_ledger_built_from_the_log_agrees_with_it(
        self, bus: EmbeddedBus, sqlite_engine: Engine
    ) -> None:
        """Re-published events and poison records are skipped on both sides: no finding."""
        assert await cross_check_log(sqlite_engine, bus, prefix=PREFIX) == []

    async def test_deleted_entry_is_named_with_its_log_offset(
        self, bus: EmbeddedBus, sqlite_engine: Engine
    ) -> None:
        """An entry removed from the ledger is reported with the offset the log holds it at."""
        chain = longest_chain(sqlite_engine)
        gone = rows(sqlite_engine, chain)[3]
        delete_entry(sqlite_engine, chain, 3, renumber=True)
        (finding,) = await cross_check_log(sqlite_engine, bus, prefix=PREFIX)
        assert (finding.kind, (finding.topic, finding.partition), finding.event_id) == (
            Tamper.DELETED,
            chain,
            gone["event_id"],
        )
        assert finding.offset is not None

    async def test_stored_offset_that_is_not_the_logs(self, bus: EmbeddedBus, sqlite_engine: Engine) -> None:
        """An entry whose offset column points past the log's end: the log has no record there."""
        chain = longest_chain(sqlite_engine)
        set_columns(sqlite_engine, chain, 1, offset=999)
        (finding,) = await cross_check_log(sqlite_engine, bus, prefix=PREFIX)
        assert (finding.kind, finding.seq, finding.offset) == (Tamper.DELETED, 1, 999)


class TestRecordPositions:
    async def test_entries_from_records_carry_the_log_offsets(
        self, tmp_path: Path, sqlite_engine: Engine
    ) -> None:
        """Entries applied with their bus records store offsets, and the cross-check confirms each one."""
        b = EmbeddedBus(tmp_path / "bus2.db")
        await b.start()
        try:
            await b.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS])
            events = {str(e.event_id): e for e in stream(20)}
            for event in events.values():
                await b.publish(place([event])[0].topic, [OutRecord(event.subject, dump_event(event))])
            consumer = await b.consumer(list(AuditLedger().topics), group=None)
            records = []
            while batch := await consumer.poll(max_records=100, timeout_s=0.2):
                records += batch
            await consumer.close()
            last = {(r.topic, r.partition): r.offset for r in records}
            with write_transaction(sqlite_engine) as conn:
                AuditLedger().apply_records(
                    conn, [(r, events[json.loads(r.value)["event_id"]]) for r in records]
                )
                conn.execute(
                    insert(projection_tracking),
                    [
                        {"projection": "audit_ledger", "topic": t, "partition": p, "offset": o}
                        for (t, p), o in last.items()
                    ],
                )
            assert await cross_check_log(sqlite_engine, b) == []
            stored = [
                e for chain in {(r.topic, r.partition) for r in records} for e in rows(sqlite_engine, chain)
            ]
            assert sorted(e["offset"] for e in stored) == sorted(r.offset for r in records)
        finally:
            await b.close()
