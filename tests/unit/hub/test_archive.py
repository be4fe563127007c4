"""Raw archive: durable, byte-for-byte, content-addressed, and an outbox."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hub.errors import NotStored
from hub.ingest import archive as archive_mod
from hub.ingest.archive import SqliteRawArchive
from hub.ports import InboundMessage


def message(payload: bytes, *, system: str = "hrp", name: str = "a.csv") -> InboundMessage:
    return InboundMessage(
        system=system,
        payload=payload,
        transport="file",
        message_id=name,
        site="main",
        metadata={"filename": name},
    )


class TestStore:
    async def test_bytes_survive_reopening_the_file(self, tmp_path: Path) -> None:
        """What store() returned is readable byte for byte from a fresh connection (durable on return)."""
        payload = "资产编号,资产名称\r\nZC-1,呼吸机\r\n".encode("gbk")
        first = SqliteRawArchive(tmp_path / "archive.db")
        outcome = await first.store(message(payload))
        first.close()
        again = SqliteRawArchive(tmp_path / "archive.db")
        assert await again.payload(outcome.record.raw_ref) == payload
        assert outcome.record.sha256 == hashlib.sha256(payload).hexdigest()
        again.close()

    async def test_exact_resend_is_recognised_and_counted(self, tmp_path: Path) -> None:
        """The same bytes from the same system return the first record, flagged duplicate, counted once."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        a = await archive.store(message(b"x,y\n1,2\n"))
        b = await archive.store(message(b"x,y\n1,2\n", name="renamed.csv"))
        assert b.duplicate
        assert not a.duplicate
        assert b.record.raw_ref == a.record.raw_ref
        recon = await archive.reconciliation()
        assert recon["hrp"]["received"] == 1
        assert recon["hrp"]["resends"] == 1
        archive.close()

    async def test_large_payload_goes_to_blob_store(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A payload over the inline limit is written to the blob store and read back intact."""
        monkeypatch.setattr(archive_mod, "INLINE_LIMIT", 10)
        archive = SqliteRawArchive(tmp_path / "archive.db")
        payload = b"0123456789" * 100
        outcome = await archive.store(message(payload))
        assert (tmp_path / "blobs" / outcome.record.sha256[:2] / outcome.record.sha256).exists()
        assert await archive.payload(outcome.record.raw_ref) == payload
        archive.close()

    async def test_altered_blob_is_detected(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A blob changed on disk after storing is refused on read, not returned as the original."""
        monkeypatch.setattr(archive_mod, "INLINE_LIMIT", 10)
        archive = SqliteRawArchive(tmp_path / "archive.db")
        outcome = await archive.store(message(b"A" * 100))
        blob = tmp_path / "blobs" / outcome.record.sha256[:2] / outcome.record.sha256
        blob.write_bytes(b"B" * 100)
        with pytest.raises(archive_mod.ArchiveError, match="does not match"):
            await archive.payload(outcome.record.raw_ref)
        archive.close()

    async def test_store_that_cannot_write_raises_not_stored(self, tmp_path: Path) -> None:
        """When the database refuses the write, store() raises NotStored rather than answering."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        archive._conn.execute(
            "CREATE TRIGGER no_insert BEFORE INSERT ON raw_messages BEGIN SELECT RAISE(FAIL, 'disk full'); END"
        )
        with pytest.raises(NotStored, match="disk full"):
            await archive.store(message(b"payload"))
        archive.close()


class TestOutbox:
    async def test_unpublished_until_marked(self, tmp_path: Path) -> None:
        """Stored records wait in the outbox, oldest first, until marked published."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        refs = [
            (await archive.store(message(f"row {i}".encode(), name=f"{i}.csv"))).record.raw_ref
            for i in range(3)
        ]
        pending = await archive.unpublished()
        assert [r.raw_ref for r, _ in pending] == refs
        await archive.mark_published(refs[:2])
        assert [r.raw_ref for r, _ in await archive.unpublished()] == refs[2:]
        archive.close()


class TestReconciliation:
    async def test_received_equals_translated_plus_dead_lettered_plus_pending(self, tmp_path: Path) -> None:
        """Every stored message is in exactly one of translated, dead_lettered, pending."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        refs = [(await archive.store(message(f"{i}".encode(), name=f"{i}"))).record.raw_ref for i in range(4)]
        await archive.set_status(
            refs[0], status="translated", events=3, failures=0, skipped=1, units=4, mapping_version="m"
        )
        await archive.set_status(
            refs[1], status="dead_lettered", events=1, failures=2, skipped=0, units=3, mapping_version="m"
        )
        r = (await archive.reconciliation())["hrp"]
        assert (r["received"], r["translated"], r["dead_lettered"], r["pending"]) == (4, 1, 1, 2)
        assert r["events"] == 4
        assert r["rows_failed"] == 2
        assert r["rows_skipped"] == 1
        with pytest.raises(ValueError, match="unknown status"):
            await archive.set_status(
                refs[2], status="lost", events=0, failures=0, skipped=0, units=0, mapping_version=None
            )
        archive.close()

    def test_synchronous_full_is_set(self, tmp_path: Path) -> None:
        """The archive connection runs WAL with synchronous=FULL (2): commits are fsync'd."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        assert archive._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert archive._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        archive.close()


class TestKeyedMessages:
    async def test_resend_gets_the_saved_answer(self, tmp_path: Path) -> None:
        """An exact resend of a keyed message returns the answer saved for the first one."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        first = await archive.store(
            message(b"MSH|^~\\&|HIS|H1|||||DFT^P03|42|P|2.5", system="his"), key="HIS|H1|42"
        )
        await archive.save_answer(first.record.raw_ref, b"MSA|AA|42")
        again = await archive.store(
            message(b"MSH|^~\\&|HIS|H1|||||DFT^P03|42|P|2.5", system="his"), key="HIS|H1|42"
        )
        assert again.duplicate
        assert again.answer == b"MSA|AA|42"
        assert again.conflict_with is None
        archive.close()

    async def test_same_key_other_bytes_is_stored_and_flagged_conflict(self, tmp_path: Path) -> None:
        """The same MSH-10 with different content is archived (nothing lost) and names the earlier message."""
        archive = SqliteRawArchive(tmp_path / "archive.db")
        first = await archive.store(message(b"MSH|...|42|first", system="his"), key="HIS|H1|42")
        second = await archive.store(message(b"MSH|...|42|second", system="his"), key="HIS|H1|42")
        assert not second.duplicate
        assert second.conflict_with == first.record.raw_ref
        assert await archive.payload(second.record.raw_ref) == b"MSH|...|42|second"
        archive.close()


class TestGroupCommit:
    async def test_concurrent_stores_all_land_with_distinct_refs(self, tmp_path: Path) -> None:
        """Many concurrent stores (one shared transaction per batch) are each durable and distinct."""
        import asyncio

        archive = SqliteRawArchive(tmp_path / "archive.db")
        outcomes = await asyncio.gather(
            *[archive.store(message(f"msg {i}".encode(), system="his", name=str(i))) for i in range(200)]
        )
        archive.close()
        reopened = SqliteRawArchive(tmp_path / "archive.db")
        assert len({o.record.raw_ref for o in outcomes}) == 200
        assert (await reopened.reconciliation())["his"]["received"] == 200
        reopened.close()

    async def test_duplicates_inside_one_batch_are_recognised(self, tmp_path: Path) -> None:
        """Two identical messages arriving in the same batch: one stored, one duplicate."""
        import asyncio

        archive = SqliteRawArchive(tmp_path / "archive.db")
        a, b = await asyncio.gather(archive.store(message(b"same")), archive.store(message(b"same")))
        assert sorted([a.duplicate, b.duplicate]) == [False, True]
        archive.close()

    async def test_stores_statuses_and_outbox_flags_share_one_commit(self, tmp_path: Path) -> None:
        """Writes that arrive together (several senders' stores, the worker's statuses, the relay's
        published flags) are one transaction, one fsync; each caller returns only once it is
        committed (readable from another connection)."""
        import asyncio
        import sqlite3

        archive = SqliteRawArchive(tmp_path / "archive.db")
        first = [
            await archive.store(message(f"old {i}".encode(), system="his", name=f"o{i}")) for i in range(3)
        ]
        commits: list[str] = []
        archive._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        other = sqlite3.connect(tmp_path / "archive.db")

        async def store(i: int) -> bool:
            outcome = await archive.store(message(f"new {i}".encode(), system="his", name=f"n{i}"))
            row = other.execute("SELECT 1 FROM raw_messages WHERE raw_ref = ?", (outcome.record.raw_ref,))
            return row.fetchone() is not None

        async def status(ref: str) -> str:
            await archive.set_status(
                ref, status="translated", events=1, failures=0, skipped=0, units=1, mapping_version="1"
            )
            return str(
                other.execute("SELECT status FROM raw_messages WHERE raw_ref = ?", (ref,)).fetchone()[0]
            )

        async def published(refs: list[str]) -> int:
            await archive.mark_published(refs)
            return int(other.execute("SELECT count(*) FROM raw_messages WHERE published = 1").fetchone()[0])

        refs = [o.record.raw_ref for o in first]
        results = await asyncio.gather(
            *[store(i) for i in range(8)], *[status(r) for r in refs], published(refs)
        )
        assert results == [True] * 8 + ["translated"] * 3 + [3]
        assert commits == ["COMMIT"]
        other.close()
        archive.close()

    async def test_a_failing_update_fails_alone(self, tmp_path: Path) -> None:
        """One update the store cannot take does not take the stores sharing its commit down with it."""
        import asyncio
        import sqlite3

        archive = SqliteRawArchive(tmp_path / "archive.db")

        def broken(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE no_such_table SET x = 1").rowcount

        stored, failed = await asyncio.gather(
            archive.store(message(b"kept", system="his")), archive._update(broken), return_exceptions=True
        )
        assert isinstance(failed, sqlite3.OperationalError)
        assert not isinstance(stored, BaseException)
        assert (await archive.reconciliation())["his"]["received"] == 1
        archive.close()


async def test_an_archive_written_before_field_accounting_gains_the_column(tmp_path: Path) -> None:
    """Reopening an older archive adds the `accounting` column; its messages read as not accounted."""
    first = SqliteRawArchive(tmp_path / "archive.db")
    ref = (await first.store(message(b"a,b\r\n1,2\r\n"))).record.raw_ref
    first.close()
    conn = sqlite3.connect(tmp_path / "archive.db")
    # As the older schema had it: no accounting column, and none of the channel-count triggers
    # (hub.ingest.channel_counts) that read it.
    for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("ALTER TABLE raw_messages DROP COLUMN accounting")
    conn.commit()
    conn.close()
    again = SqliteRawArchive(tmp_path / "archive.db")
    before = await again.status(ref)
    assert before is not None
    assert before.accounting is None
    tally = {"rows": 1, "cells": 2, "claimed": 2, "ignored": 0, "unclaimed": {}}
    await again.set_status(
        ref,
        status="translated",
        events=1,
        failures=0,
        skipped=0,
        units=1,
        mapping_version="m",
        accounting=tally,
    )
    after = await again.status(ref)
    assert after is not None
    assert after.accounting == tally
    again.close()


async def test_an_archive_written_before_channel_counts_gets_them_from_its_messages(tmp_path: Path) -> None:
    """Reopening an archive that had no channel counts fills them once from its messages, then keeps them."""
    first = SqliteRawArchive(tmp_path / "archive.db")
    for i in range(3):
        await first.store(message(f"row {i}".encode()))
    first.close()
    conn = sqlite3.connect(tmp_path / "archive.db")
    for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE raw_channel_counts")
    conn.commit()
    conn.close()
    again = SqliteRawArchive(tmp_path / "archive.db")
    (counted,) = await again.channel_counts()
    assert (counted.received, counted.pending) == (3, 3)
    await again.store(message(b"row 3"))
    (counted,) = await again.channel_counts()
    assert counted.received == 4
    again.close()
