"""The audit ledger projection: one hash chain per topic-partition, exactly once, with checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord
from projections.audit.ledger import (
    GENESIS_HASH,
    METADATA,
    AuditLedger,
    chain_head,
    checkpoints,
    entries,
    take_checkpoint,
)
from projections.runtime.db import write_transaction
from projections.runtime.runner import ProjectionRunner
from schemas.catalogue import dump_event, parse_event
from tests.unit.audit.ledger_helpers import entry_hash, fill, place, rows, stream
from tests.unit.projections.factories import digest
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS


def _chains(engine: Engine) -> dict[tuple[str, int], list[dict[str, object]]]:
    with engine.connect() as conn:
        keys = conn.execute(select(entries.c.topic, entries.c.partition).distinct()).all()
    return {(t, p): rows(engine, (t, p)) for t, p in keys}


class TestChaining:
    def test_entries_chain_per_partition_in_offset_order(self, engine: Engine) -> None:
        """Each partition's events become seq 0, 1, 2... in offset order, each linked to the one before."""
        records = place(stream(60))
        fill(engine, records)
        chains = _chains(engine)
        assert len(chains) > 3
        for (topic, partition), chain in chains.items():
            expected = [r for r in records if (r.topic, r.partition) == (topic, partition)]
            assert [e["seq"] for e in chain] == list(range(len(expected)))
            assert [e["entry_bytes"] for e in chain] == [r.value for r in expected]
            assert [e["event_id"] for e in chain] == [str(parse_event(r.value).event_id) for r in expected]
            prev = GENESIS_HASH
            for entry in chain:
                assert entry["prev_hash"] == prev
                assert entry["entry_hash"] == entry_hash(prev, entry["entry_bytes"], entry["record_hash"])
                prev = entry["entry_hash"]
        assert sum(len(c) for c in chains.values()) == 60

    def test_entry_bytes_are_the_canonical_event(self, engine: Engine) -> None:
        """The hashed bytes are dump_event of the parsed event, and the row's columns copy its identity."""
        event = stream(1)[0]
        fill(engine, place([event]))
        (entry,) = next(iter(_chains(engine).values()))
        assert entry["entry_bytes"] == dump_event(event)
        assert (entry["event_id"], entry["subject"], entry["event_type"]) == (
            str(event.event_id),
            event.subject,
            event.type,
        )
        assert entry["recorded_at"] == event.recorded_at

    def test_follows_every_canonical_and_derived_topic(self) -> None:
        """The ledger subscribes to all canonical and derived topics of the catalogue."""
        assert set(AuditLedger().topics) == {
            t.name for t in (*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS)
        }


class TestExactlyOnce:
    def test_applying_twice_equals_once(self, engine: Engine) -> None:
        """Redelivered records and the same events re-published at new offsets add no entry."""
        events = stream(40)
        records = place(events)
        fill(engine, records)
        before = digest(engine, METADATA)
        fill(engine, records)  # redelivered: same offsets
        ends = {}
        for r in records:
            ends[r.topic, r.partition] = r.offset + 1
        fill(engine, place(events[::-1], start=ends))  # re-published by a translator after a crash
        assert digest(engine, METADATA) == before

    def test_batching_does_not_change_the_ledger(self, db_url: str, tmp_path) -> None:
        """Applying a stream one record at a time or in large batches gives the same tables."""
        from projections.runtime.db import make_engine

        records = place(stream(30))
        one = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
        many = make_engine(db_url)
        try:
            fill(one, records, batch=1)
            fill(many, records, batch=30)
            assert digest(one, METADATA) == digest(many, METADATA)
        finally:
            one.dispose()
            many.dispose()


class TestCheckpoints:
    def test_a_checkpoint_every_n_entries(self, engine: Engine) -> None:
        """Every `checkpoint_every` entries of a chain the head is recorded, dated by that entry."""
        fill(engine, place(stream(60)), ledger=AuditLedger(checkpoint_every=4))
        with engine.connect() as conn:
            marks = conn.execute(select(checkpoints)).mappings().all()
        assert marks
        for mark in marks:
            chain = rows(engine, (mark["topic"], mark["partition"]))
            assert mark["count"] % 4 == 0
            assert mark["head_hash"] == chain[mark["count"] - 1]["entry_hash"]
            assert mark["created_at"] == chain[mark["count"] - 1]["recorded_at"]

    def test_on_demand_checkpoint_records_every_head_once(self, engine: Engine) -> None:
        """take_checkpoint records each chain's current head; repeating it adds nothing."""
        fill(engine, place(stream(20)))
        now = datetime(2024, 6, 1, tzinfo=UTC)
        with write_transaction(engine) as conn:
            heads = take_checkpoint(conn, now=now)
            take_checkpoint(conn, now=now)
        with engine.connect() as conn:
            stored = conn.execute(select(checkpoints)).mappings().all()
            assert {(m["topic"], m["partition"]): (m["count"], m["head_hash"]) for m in stored} == {
                tp: (h.count, h.head_hash) for tp, h in heads.items()
            }
            for (topic, partition), head in heads.items():
                assert chain_head(conn, topic, partition) == head
        assert sum(h.count for h in heads.values()) == 20

    def test_checkpoint_interval_must_be_positive(self) -> None:
        """A checkpoint interval below one is refused."""
        import pytest

        with pytest.raises(ValueError, match="checkpoint_every"):
            AuditLedger(checkpoint_every=0)


class TestPositions:
    def test_apply_records_keeps_bus_offsets_and_strips_the_prefix(self, engine: Engine) -> None:
        """Given the bus records, entries carry their partition and offset under the catalogue topic name."""
        events = stream(6)
        records = [
            r.__class__(f"h1.{r.topic}", r.partition, r.offset + 100, r.key, r.value, (), 0)
            for r in place(events)
        ]
        with write_transaction(engine) as conn:
            AuditLedger().apply_records(conn, list(zip(records, events, strict=True)))
        stored = {e["event_id"]: e for chain in _chains(engine).values() for e in chain}
        for record, event in zip(records, events, strict=True):
            entry = stored[str(event.event_id)]
            assert (f"h1.{entry['topic']}", entry["partition"], entry["offset"]) == (
                record.topic,
                record.partition,
                record.offset,
            )

    async def test_runner_builds_the_ledger_from_the_embedded_bus(self, engine: Engine, tmp_path) -> None:
        """Under the projection runner, each bus partition becomes one chain in the bus's order."""
        bus = EmbeddedBus(tmp_path / "bus.db")
        await bus.start()
        try:
            await bus.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS])
            events = stream(30)
            placed: dict[tuple[str, int], list[str]] = {}
            for event in events:
                topic = place([event])[0].topic
                ((partition, _),) = await bus.publish(topic, [OutRecord(event.subject, dump_event(event))])
                placed.setdefault((topic, partition), []).append(str(event.event_id))
            runner = ProjectionRunner(AuditLedger(), bus, engine)
            assert await runner.run_until_idle() == 30
            await runner.close()
        finally:
            await bus.close()
        assert {tp: [e["event_id"] for e in chain] for tp, chain in _chains(engine).items()} == placed
