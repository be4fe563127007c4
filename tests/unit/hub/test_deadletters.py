"""Dead-letter store: deterministic ids, re-open on failure, resolve on success."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hub.translation.deadletters import (
    DeadLetter,
    DeadLetterStore,
    PostgresDeadLetterStore,
    dead_letter_id_for,
    dead_letter_out_record,
)
from schemas.records import DeadLetterRecord, SourceLocation

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hub.translation.deadletters import DeadLetterBook


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def book(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeadLetterBook]:
    """The dead-letter store beside each archive backend: SQLite, and PostgreSQL (HUB_ARCHIVE_URL)."""
    store: DeadLetterBook
    if request.param == "sqlite":
        store = DeadLetterStore(tmp_path / "a.db")
    else:
        store = PostgresDeadLetterStore(str(request.getfixturevalue("pg_url")))
    yield store
    store.close()


def letter(position: str, *, reason: str = "原值 'abc' is not an amount", mapping: str = "m1") -> DeadLetter:
    return DeadLetter(
        dead_letter_id=dead_letter_id_for("hrp:abc", position),
        raw_ref="hrp:abc",
        system="hrp",
        message_id="ledger.csv",
        position=position,
        reason=reason,
        code="invalid_value",
        location={"file": "ledger.csv", "line": int(position.split(":")[1]), "column": "原值"},
        excerpt={"原值": "abc"},
        adapter_version="hrp/1",
        mapping_version=mapping,
        failed_at=datetime.now(UTC),
    )


class TestDeadLetterStore:
    async def test_same_failure_twice_is_one_dead_letter(self, book: DeadLetterBook) -> None:
        """Recording the same position again updates the one dead letter instead of adding another."""
        await book.record([letter("line:5")])
        await book.record([letter("line:5")])  # the same mapping again: the same attempt
        assert [d.attempts for d in await book.query()] == [1]
        await book.record([letter("line:5", reason="still bad", mapping="m2")])
        letters = await book.query()
        assert len(letters) == 1
        assert letters[0].reason == "still bad"
        assert letters[0].attempts == 2
        assert letters[0].excerpt == {"原值": "abc"}

    async def test_positions_that_stop_failing_are_resolved(self, book: DeadLetterBook) -> None:
        """After a retry where line 5 translates and line 7 still fails, only line 7 stays open."""
        await book.record([letter("line:5"), letter("line:7")])
        resolved = await book.resolve_others("hrp:abc", ["line:7"])
        assert resolved == 1
        assert [d.position for d in await book.query()] == ["line:7"]
        assert {d.position for d in await book.query(status="resolved")} == {"line:5"}
        assert await book.counts() == {"hrp": {"open": 1, "resolved": 1}}
        assert await book.open_raw_refs() == ["hrp:abc"]
        assert await book.open_raw_refs("his") == []
        assert await book.reasons() == [("hrp", "invalid_value", 1)]
        assert await book.query(system="his") == []
        assert await book.resolve_others("hrp:abc", []) == 1
        assert await book.open_raw_refs() == []

    async def test_a_batch_resolves_per_message(self, book: DeadLetterBook) -> None:
        """One call for a translation batch resolves, per message, only the positions that no
        longer fail in that message; a message with nothing open is left alone."""
        other = letter("line:5").model_copy(
            update={"raw_ref": "hrp:def", "dead_letter_id": dead_letter_id_for("hrp:def", "line:5")}
        )
        await book.record([letter("line:5"), letter("line:7"), other])
        resolved = await book.resolve_others_many(
            [("hrp:abc", ["line:7"]), ("hrp:def", ["line:5"]), ("hrp:none", [])]
        )
        assert resolved == 1
        assert sorted((d.raw_ref, d.position) for d in await book.query()) == [
            ("hrp:abc", "line:7"),
            ("hrp:def", "line:5"),
        ]
        assert await book.resolve_others_many([]) == 0

    def test_published_record_carries_location_but_not_excerpt(self) -> None:
        """The dlq topic record names where and why, and leaves out source values."""
        record = letter("line:5").as_record()
        assert record["location"] == {"file": "ledger.csv", "line": 5, "column": "原值"}
        assert "excerpt" not in record

    def test_topic_record_reads_back_as_the_shared_model(self) -> None:
        """What the worker publishes on dlq.<system>.v1 parses as the DeadLetterRecord that
        `hub schemas export` publishes, keyed by the source message id, and holds no excerpt."""
        letter_ = letter("line:5")
        out = dead_letter_out_record(letter_)
        assert out.key == "ledger.csv"
        assert DeadLetterRecord.model_validate_json(out.value) == letter_.wire()
        assert out.value == letter_.wire().model_dump_json().encode()  # byte for byte the record's JSON
        assert "excerpt" not in json.loads(out.value)

    async def test_a_row_stored_by_an_earlier_version_still_reads(self, tmp_path: Path) -> None:
        """Locations stored before the shared model (a title in `column`) read back unchanged."""
        store = DeadLetterStore(tmp_path / "a.db")
        await store.record([letter("line:5")])
        (back,) = await store.query()
        assert back.location == SourceLocation(file="ledger.csv", line=5, column="原值")
        store.close()


class TestNotes:
    async def test_notes_are_listed_apart_and_not_counted_as_failures(self, book: DeadLetterBook) -> None:
        """A note (unit applied, a department unknown) is not a failure: failure counts and lists skip
        it, `kind="note"` lists it, a retry still finds its message, and the wire record says which."""
        note = letter("line:7").model_copy(update={"kind": "note", "code": "department_unknown"})
        await book.record([letter("line:5"), note])
        assert [d.position for d in await book.query()] == ["line:5"]
        assert [d.position for d in await book.query(kind="note")] == ["line:7"]
        assert len(await book.query(kind=None)) == 2
        assert (await book.count(), await book.count(kind="note")) == (1, 1)
        assert await book.counts() == {"hrp": {"open": 1, "resolved": 0}}
        assert await book.reasons() == [("hrp", "invalid_value", 1)]
        assert await book.open_raw_refs() == ["hrp:abc"]
        assert json.loads(dead_letter_out_record(note).value)["kind"] == "note"
        await book.resolve_others("hrp:abc", ["line:5"])  # the retry no longer notes line 7
        assert await book.query(kind="note") == []


def test_a_store_from_before_notes_takes_its_letters_as_failures(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE dead_letters (dead_letter_id TEXT PRIMARY KEY, raw_ref TEXT NOT NULL, system TEXT NOT NULL,"
        " message_id TEXT NOT NULL, position TEXT NOT NULL, reason TEXT NOT NULL, code TEXT NOT NULL,"
        " location TEXT NOT NULL, excerpt TEXT, adapter_version TEXT NOT NULL, mapping_version TEXT,"
        " failed_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL DEFAULT 'open',"
        " resolved_at TEXT);"
        "INSERT INTO dead_letters (dead_letter_id, raw_ref, system, message_id, position, reason, code, location,"
        " adapter_version, failed_at) VALUES ('x', 'hrp:old', 'hrp', 'a.csv', 'line:3', 'bad', 'invalid_date',"
        " '{}', 'hrp/1', '2024-06-01T00:00:00+00:00');"
    )
    old.commit()
    old.close()
    store = DeadLetterStore(path)
    try:
        (found,) = asyncio.run(store.query())
        assert (found.raw_ref, found.kind) == ("hrp:old", "failure")
    finally:
        store.close()
