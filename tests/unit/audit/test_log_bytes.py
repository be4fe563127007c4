"""The ledger covers the log: every tamper class on the embedded bus's file, found with its position.

The log is changed with plain sqlite3 on bus.db, as someone with write access to the file could;
the ledger (SQLite, then PostgreSQL) is changed with SQL, as a database administrator could. Each test
names the first changed entry by topic, partition, offset, seq and event id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import delete, update

from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord, event_out_record
from projections.audit.ledger import AuditLedger, checkpoints, entries, seals
from projections.audit.seals import seal_key
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import projection_applied_events, projection_tracking
from replay.audit.chain import Tamper
from replay.audit.log import check_log
from replay.audit.verify import verify
from tests.unit.audit.ledger_helpers import Chain, entry_hash, longest_chain, rewrite_tail, rows, stream
from tests.unit.audit.log_tamper import LogFile
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS, topic_for_event_type

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy import Engine

PREFIX = "h1."
KEY = seal_key(b"test secret")
EVERY = 4


async def _run_ledger(bus: EmbeddedBus, engine: Engine) -> int:
    runner = ProjectionRunner(AuditLedger(checkpoint_every=EVERY, seal_key=KEY), bus, engine, prefix=PREFIX)
    try:
        return await runner.run_until_idle()
    finally:
        await runner.close()


@pytest.fixture
async def bus(tmp_path: Path, engine: Engine) -> AsyncIterator[EmbeddedBus]:
    """60 events published as the hub publishes them (keys, headers, timestamps); the ledger built."""
    b = EmbeddedBus(tmp_path / "bus.db")
    await b.start()
    await b.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS], PREFIX)
    for event in stream(60):
        await b.publish(PREFIX + topic_for_event_type(event.type).name, [event_out_record(event)])
    assert await _run_ledger(b, engine) == 60
    yield b
    await b.close()


@pytest.fixture
def log(tmp_path: Path) -> LogFile:
    return LogFile(tmp_path / "bus.db")


@pytest.fixture
def chain(bus: EmbeddedBus, engine: Engine) -> Chain:
    longest = longest_chain(engine)
    assert len(rows(engine, longest)) >= 10
    return longest


def _full(chain: Chain) -> tuple[str, int]:
    return PREFIX + chain[0], chain[1]


def _position(finding) -> tuple:
    return (finding.kind, finding.topic, finding.partition, finding.seq, finding.offset, finding.event_id)


class TestIntact:
    async def test_log_and_ledger_agree(self, bus: EmbeddedBus, engine: Engine) -> None:
        """Every record is read and matches its entry: no finding, and verify with seals is intact."""
        checked = await check_log(engine, bus, prefix=PREFIX, seal_key=KEY)
        assert (checked.records, checked.findings) == (60, [])
        report = verify(engine, seal_key=KEY)
        assert report.intact, report.findings
        assert report.seals_checked > 0


class TestEditedLogRecord:
    async def test_edited_value_names_the_entry_and_the_field(
        self, bus: EmbeddedBus, engine: Engine, log: LogFile, chain: Chain
    ) -> None:
        """One byte-level change in a record's value is found at its offset, with the changed field."""
        entry = rows(engine, chain)[5]
        log.edit_value(
            *_full(chain), entry["offset"], lambda v: v.replace(b'"occurred_at":"20', b'"occurred_at":"19')
        )
        assert verify(engine, seal_key=KEY).intact  # the ledger itself is untouched
        (finding,) = (await check_log(engine, bus, prefix=PREFIX, seal_key=KEY)).findings
        assert _position(finding) == (Tamper.EDITED, *chain, 5, entry["offset"], entry["event_id"])
        assert "occurred_at" in finding.detail

    async def test_whitespace_only_change_is_still_a_change(
        self, bus: EmbeddedBus, engine: Engine, log: LogFile, chain: Chain
    ) -> None:
        """The same event re-encoded (a space added) is other bytes: found, and said to be a re-encoding."""
        entry = rows(engine, chain)[2]
        log.edit_value(*_full(chain), entry["offset"], lambda v: v.replace(b'":', b'": ', 1))
        (finding,) = (await check_log(engine, bus, prefix=PREFIX)).findings
        assert (finding.kind, finding.offset) == (Tamper.EDITED, entry["offset"])
        assert "re-encoded" in finding.detail

    async def test_edited_header_only(
        self, bus: EmbeddedBus, engine: Engine, log: LogFile, chain: Chain
    ) -> None:
        """A header changed while the value is untouched is found too: the whole record is hashed."""
        entry = rows(engine, chain)[3]
        log.edit_header(*_full(chain), entry["offset"], "event_type", b"asset.decommissioned")
        (finding,) = (await check_log(engine, bus, prefix=PREFIX)).findings
        assert _position(finding) == (Tamper.EDITED, *chain, 3, entry["offset"], entry["event_id"])
        assert "headers" in finding.detail


class TestDeletedAndInsertedLogRecords:
    async def test_deleted_record(self, bus: EmbeddedBus, engine: Engine, log: LogFile, chain: Chain) -> None:
        """A record removed from the log is named by the entry that held it."""
        entry = rows(engine, chain)[4]
        log.delete(*_full(chain), entry["offset"])
        (finding,) = (await check_log(engine, bus, prefix=PREFIX)).findings
        assert _position(finding) == (Tamper.DELETED, *chain, 4, entry["offset"], entry["event_id"])

    async def test_inserted_record_is_the_first_finding(
        self, bus: EmbeddedBus, engine: Engine, log: LogFile, chain: Chain
    ) -> None:
        """A forged record put in the middle (later offsets moved up) is found first, at its offset."""
        stored = rows(engine, chain)
        forged = json.loads(log.value(*_full(chain), stored[6]["offset"]))
        forged["event_id"] = "00000000-0000-4000-8000-00000000f00d"
        log.insert(*_full(chain), stored[6]["offset"], json.dumps(forged).encode(), forged["subject"])
        report = verify(engine, seal_key=KEY)
        report.add((await check_log(engine, bus, prefix=PREFIX)).findings)
        first = report.first
        assert first is not None
        assert (first.kind, first.topic, first.partition, first.offset, first.event_id) == (
            Tamper.INSERTED,
            *chain,
            stored[6]["offset"],
            forged["event_id"],
        )
        # The records after it moved: each is reported as out of place, none as lost.
        assert {f.kind for f in report.findings} == {Tamper.INSERTED, Tamper.REORDERED}

    async def test_second_record_of_an_event_with_other_content(
        self, bus: EmbeddedBus, engine: Engine, chain: Chain
    ) -> None:
        """A record re-using an applied event id with other content is skipped by the ledger, not by verify."""
        entry = rows(engine, chain)[1]
        doc = json.loads(entry["entry_bytes"])
        doc["occurred_at"] = "1999-01-01T00:00:00Z"
        (placed,) = await bus.publish(
            PREFIX + chain[0],
            [OutRecord(doc["subject"], json.dumps(doc).encode())],
        )
        await _run_ledger(bus, engine)  # skips it: the event id was applied before
        (finding,) = (await check_log(engine, bus, prefix=PREFIX)).findings
        assert (finding.kind, finding.topic, finding.partition, finding.event_id) == (
            Tamper.INSERTED,
            *chain,
            entry["event_id"],
        )
        assert finding.offset == placed[1]
        assert "occurred_at" in finding.detail


class TestLedgerTail:
    async def test_deleted_tail_with_its_tracking_rows(
        self, bus: EmbeddedBus, engine: Engine, chain: Chain
    ) -> None:
        """Cutting the last entry with its tracking rows: the signed head says so, the log says which."""
        stored = rows(engine, chain)
        last = stored[-1]
        c, a, t, k = entries.c, projection_applied_events.c, projection_tracking.c, checkpoints.c
        with engine.begin() as conn:
            # The careful attacker: the unsigned checkpoint rows past the cut go too.
            conn.execute(
                delete(checkpoints).where(k.topic == chain[0], k.partition == chain[1], k.count > last["seq"])
            )
            conn.execute(
                delete(entries).where(c.topic == chain[0], c.partition == chain[1], c.seq == last["seq"])
            )
            conn.execute(delete(projection_applied_events).where(a.event_id == last["event_id"]))
            conn.execute(
                update(projection_tracking)
                .where(t.topic == PREFIX + chain[0], t.partition == chain[1])
                .values(offset=stored[-2]["offset"])
            )
        assert verify(engine).intact  # without the seal key: a consistent, shorter chain
        report = verify(engine, seal_key=KEY)
        (cut,) = report.findings
        assert (cut.kind, cut.topic, cut.partition, cut.seq, cut.last_seq) == (
            Tamper.TRUNCATED,
            *chain,
            last["seq"],
            last["seq"],
        )
        (named,) = (await check_log(engine, bus, prefix=PREFIX, seal_key=KEY)).findings
        assert _position(named) == (Tamper.TRUNCATED, *chain, last["seq"], last["offset"], last["event_id"])

    async def test_rewritten_tail_found_without_an_exported_checkpoint(
        self, bus: EmbeddedBus, engine: Engine, chain: Chain
    ) -> None:
        """A tail rewritten with every hash recomputed (unsigned checkpoints too) fails the kept seals,
        and the log names the first changed entry exactly."""
        count = len(rows(engine, chain))
        first = rewrite_tail(engine, chain, 3, _reword)
        assert verify(engine).intact  # the chain and its unsigned checkpoints agree with themselves
        report = verify(engine, seal_key=KEY)
        (rewritten,) = report.findings
        assert (rewritten.kind, rewritten.topic, rewritten.partition) == (Tamper.TAIL_REWRITTEN, *chain)
        assert rewritten.seq is not None
        assert rewritten.seq <= first <= rewritten.last_seq == count - 1
        report.add((await check_log(engine, bus, prefix=PREFIX, seal_key=KEY)).findings)
        target = rows(engine, chain)[first]
        assert report.first is not None
        assert _position(report.first) == (
            Tamper.REWRITTEN,
            *chain,
            first,
            target["offset"],
            target["event_id"],
        )

    async def test_forged_and_removed_seals(self, bus: EmbeddedBus, engine: Engine, chain: Chain) -> None:
        """A seal whose MAC does not verify is forged; a chain whose head seal is gone is unsealed."""
        s = seals.c
        with engine.begin() as conn:
            conn.execute(
                update(seals)
                .where(s.topic == chain[0], s.partition == chain[1], s.kind == "mark", s.count == EVERY)
                .values(head_hash=entry_hash("00" * 32, b"forged"))
            )
            conn.execute(delete(seals).where(s.topic == chain[0], s.partition == chain[1], s.kind == "head"))
        kinds = {(f.kind, f.topic, f.partition) for f in verify(engine, seal_key=KEY).findings}
        assert kinds == {(Tamper.FORGED_CHECKPOINT, *chain), (Tamper.UNSEALED, *chain)}


def _reword(data: bytes) -> bytes:
    out = data.replace(b'"occurred_at":"20', b'"occurred_at":"19')
    assert out != data
    return out
