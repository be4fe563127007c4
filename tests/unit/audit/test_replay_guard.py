"""history flags, as-of and rebuild refuse a log record that no longer matches its ledger entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from hub.bus.embedded import EmbeddedBus
from hub.ports import event_out_record
from projections.assets.registry import AssetRegistry
from replay.as_of import write_as_of
from replay.audit.match import LedgerMatcher
from replay.errors import RecordTampered
from replay.history import SubjectKind, history
from replay.rebuild import rebuild
from tests.unit.audit.ledger_helpers import rows, stream
from tests.unit.audit.log_tamper import LogFile
from tests.unit.audit.test_log_bytes import PREFIX, _run_ledger
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS, topic_for_event_type

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy import Engine


@pytest.fixture
async def bus(tmp_path: Path, sqlite_engine: Engine) -> AsyncIterator[EmbeddedBus]:
    b = EmbeddedBus(tmp_path / "bus.db")
    await b.start()
    await b.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS], PREFIX)
    for event in stream(60):
        await b.publish(PREFIX + topic_for_event_type(event.type).name, [event_out_record(event)])
    await _run_ledger(b, sqlite_engine)
    yield b
    await b.close()


@pytest.fixture
def edited(bus: EmbeddedBus, sqlite_engine: Engine, tmp_path: Path) -> dict:
    """One asset event's record edited in bus.db: its ledger entry row is returned."""
    asset_rows = [
        r
        for p in range(6)
        for r in rows(sqlite_engine, ("canonical.asset.v1", p))
        if r["subject"].startswith("A")
    ]
    target = asset_rows[len(asset_rows) // 2]
    LogFile(tmp_path / "bus.db").edit_value(
        PREFIX + target["topic"],
        target["partition"],
        target["offset"],
        lambda v: v.replace(b'"occurred_at":"20', b'"occurred_at":"19'),
    )
    return target


class TestHistory:
    async def test_the_edited_record_is_flagged_and_the_others_are_not(
        self, bus: EmbeddedBus, sqlite_engine: Engine, edited: dict
    ) -> None:
        """History still lists the event, marked as no longer matching the ledger; its neighbours are clean."""
        entries = await history(
            bus,
            SubjectKind.ASSET,
            edited["subject"],
            prefix=PREFIX,
            ledger=LedgerMatcher(sqlite_engine, prefix=PREFIX),
        )
        flagged = [e for e in entries if e.tampered]
        assert [(e.event_id, e.offset) for e in flagged] == [(edited["event_id"], edited["offset"])]
        assert "edited" in (flagged[0].tampered or "")
        assert len(entries) > 1
        assert json.loads(json.dumps(flagged[0].as_json()))["tampered"] == flagged[0].tampered


class TestAsOf:
    async def test_refused_naming_the_record(
        self, bus: EmbeddedBus, sqlite_engine: Engine, edited: dict, tmp_path: Path
    ) -> None:
        """The as-of stops with the record's place and event id, and writes no file."""
        out = tmp_path / "asof.db"
        now = datetime.now(UTC)
        with pytest.raises(RecordTampered) as caught:
            await write_as_of(
                bus,
                [AssetRegistry()],
                out,
                occurred_at=now,
                known_at=now,
                prefix=PREFIX,
                ledger=LedgerMatcher(sqlite_engine, prefix=PREFIX),
            )
        message = str(caught.value)
        assert f"offset {edited['offset']}" in message
        assert edited["event_id"] in message
        assert not out.exists()

    async def test_explicit_override_replays_the_log_as_it_is(
        self, bus: EmbeddedBus, sqlite_engine: Engine, edited: dict, tmp_path: Path
    ) -> None:
        """With accept_tampered the file is written from the log as it now is."""
        now = datetime.now(UTC)
        report = await write_as_of(
            bus,
            [AssetRegistry()],
            tmp_path / "asof.db",
            occurred_at=now,
            known_at=now,
            prefix=PREFIX,
            ledger=LedgerMatcher(sqlite_engine, prefix=PREFIX),
            accept_tampered=True,
        )
        assert report.out.exists()


class TestRebuild:
    async def test_refused_before_anything_is_swapped(
        self, bus: EmbeddedBus, sqlite_engine: Engine, edited: dict
    ) -> None:
        """A rebuild reading the edited record stops with RecordTampered and swaps nothing in."""
        with pytest.raises(RecordTampered, match=edited["event_id"]):
            await rebuild(
                bus,
                sqlite_engine,
                AssetRegistry(),
                prefix=PREFIX,
                ledger=LedgerMatcher(sqlite_engine, prefix=PREFIX),
            )
        with sqlite_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM asset_registry_assets")).scalar() == 0
        report = await rebuild(
            bus,
            sqlite_engine,
            AssetRegistry(),
            prefix=PREFIX,
            ledger=LedgerMatcher(sqlite_engine, prefix=PREFIX),
            accept_tampered=True,
        )
        assert report.swapped
        with sqlite_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM asset_registry_assets")).scalar() == 5
