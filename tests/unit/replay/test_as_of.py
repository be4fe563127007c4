"""Bitemporal as-of: a late correction shows for a known-at after it arrived and not before it."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.bus.embedded import EmbeddedBus
from projections.assets.registry import AssetRegistry, get_asset
from projections.runtime.db import make_engine
from projections.runtime.derived import projection_outbox
from replay.as_of import asset_as_of, write_as_of
from replay.errors import ReplayFailed
from tests.unit.projections.factories import registered
from tests.unit.replay.streams import DEPTS, Concluding, moved, publish, publish_raw

T1 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
ICU, ER, OR = DEPTS[0], DEPTS[1], DEPTS[2]


async def scenario(bus: EmbeddedBus) -> None:
    """Registered in ICU a month before T1; moved to ER at T1 (known at once); then, recorded a week
    late, a correction: it had gone on to the store at T1+1h. A second asset only exists later."""
    await publish(
        bus,
        [
            registered("reg", "A1", at=T1 - timedelta(days=30), recorded=T1 - timedelta(days=30)),
            moved("move", "A1", ER, at=T1, recorded=T1),
            moved(
                "fix", "A1", OR, at=T1 + timedelta(hours=1), recorded=T1 + timedelta(days=7), reason="更正"
            ),
            registered("later", "A2", at=T1 + timedelta(days=3), recorded=T1 + timedelta(days=3)),
        ],
    )


def department(path: Path, asset_id: str) -> Any:
    """(department code, name) of the asset in an as-of file, or None when it has no such asset."""
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        row = get_asset(conn, asset_id)
    engine.dispose()
    return None if row is None else (row["department_code"], row["department_name"])


class TestWriteAsOf:
    async def test_known_at_decides_whether_the_late_correction_counts(
        self, bus: EmbeddedBus, tmp_path: Path
    ) -> None:
        """As of T1+2h: known at T1+1d the asset is in ER; known at T1+8d, after the correction, in the store."""
        await scenario(bus)
        before, after = tmp_path / "day1.db", tmp_path / "day8.db"
        when = T1 + timedelta(hours=2)
        await write_as_of(bus, [AssetRegistry()], before, occurred_at=when, known_at=T1 + timedelta(days=1))
        await write_as_of(bus, [AssetRegistry()], after, occurred_at=when, known_at=T1 + timedelta(days=8))
        assert department(before, "A1") == (ER.code, ER.name)
        assert department(after, "A1") == (None, OR.name)  # the store has no code, only a name

    async def test_occurred_at_leaves_out_what_had_not_happened_yet(
        self, bus: EmbeddedBus, tmp_path: Path
    ) -> None:
        """As of an hour before T1 (known now) the asset is still in ICU, and A2 does not exist yet."""
        await scenario(bus)
        out = tmp_path / "early.db"
        report = await write_as_of(
            bus, [AssetRegistry()], out, occurred_at=T1 - timedelta(hours=1), known_at=datetime.now(UTC)
        )
        assert department(out, "A1") == (ICU.code, ICU.name)
        assert department(out, "A2") is None
        assert (report.records, report.selected) == (4, 1)

    async def test_the_file_says_what_it_is_and_stands_alone(self, bus: EmbeddedBus, tmp_path: Path) -> None:
        """as_of_meta records both times and the counts; no -wal or -shm file is left beside it."""
        await scenario(bus)
        out = tmp_path / "audit.db"
        await write_as_of(bus, [AssetRegistry()], out, occurred_at=T1, known_at=T1 + timedelta(days=8))
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("audit")) == ["audit.db"]
        conn = sqlite3.connect(out)
        meta = dict(conn.execute("SELECT key, value FROM as_of_meta").fetchall())
        conn.close()
        assert datetime.fromisoformat(meta["occurred_at"]) == T1
        assert datetime.fromisoformat(meta["known_at"]) == T1 + timedelta(days=8)
        assert json.loads(meta["applied_per_projection"]) == {"asset_registry": 2}

    async def test_an_existing_file_is_never_overwritten(self, bus: EmbeddedBus, tmp_path: Path) -> None:
        """The output must be new: an existing file is refused and left as it was."""
        out = tmp_path / "taken.db"
        out.write_bytes(b"keep me")
        with pytest.raises(ReplayFailed, match="exists"):
            await write_as_of(bus, [AssetRegistry()], out, occurred_at=T1, known_at=T1)
        assert out.read_bytes() == b"keep me"

    async def test_time_aware_projections_tick_at_the_as_of_time_and_publish_nothing(
        self, bus: EmbeddedBus, tmp_path: Path
    ) -> None:
        """A ticking projection concludes as of the business time asked for; its derived events stay unpublished."""
        await scenario(bus)
        out = tmp_path / "ticked.db"
        when = T1 + timedelta(hours=2)
        await write_as_of(bus, [Concluding()], out, occurred_at=when, known_at=T1 + timedelta(days=8))
        engine = make_engine(f"sqlite:///{out}")
        with engine.connect() as conn:
            rows = conn.execute(
                select(projection_outbox.c.key, projection_outbox.c.published, projection_outbox.c.value)
            ).all()
        engine.dispose()
        assert sorted((key, published) for key, published, _ in rows) == [("A1", False), ("ticked", False)]
        ticked = next(json.loads(value) for key, _, value in rows if key == "ticked")
        assert datetime.fromisoformat(ticked["recorded_at"]) == when
        reader = await bus.consumer(["derived.asset.v1"], group=None)
        assert await reader.poll(timeout_s=0.1) == []
        await reader.close()

    @pytest.mark.wire_unchecked  # publishes a poison record on purpose
    async def test_poison_is_kept_by_its_record_time(self, bus: EmbeddedBus, tmp_path: Path) -> None:
        """A record that is not an event is recorded as poison when it was on the log by known-at."""
        await publish_raw(bus, "A1", b"{not json")
        out = tmp_path / "poison.db"
        await write_as_of(
            bus, [AssetRegistry()], out, occurred_at=T1, known_at=datetime.now(UTC) + timedelta(1)
        )
        conn = sqlite3.connect(out)
        assert conn.execute("SELECT count(*) FROM projection_poison").fetchone() == (1,)
        conn.close()

    async def test_naive_times_are_refused(self, bus: EmbeddedBus, tmp_path: Path) -> None:
        """Both cut-offs need a time zone: a naive one is a bug, not a guess."""
        with pytest.raises(ValueError, match="time zone"):
            await write_as_of(
                bus, [AssetRegistry()], tmp_path / "x.db", occurred_at=T1.replace(tzinfo=None), known_at=T1
            )


class TestAssetAsOf:
    async def test_one_asset_gives_the_same_two_answers(self, bus: EmbeddedBus) -> None:
        """The in-memory single-asset replay answers ER before the correction was known and the store after."""
        await scenario(bus)
        when = T1 + timedelta(hours=2)
        first = await asset_as_of(bus, "A1", occurred_at=when, known_at=T1 + timedelta(days=1))
        corrected = await asset_as_of(bus, "A1", occurred_at=when, known_at=T1 + timedelta(days=8))
        assert first is not None
        assert corrected is not None
        assert (first["department_code"], corrected["department_name"]) == (ER.code, OR.name)

    async def test_an_asset_not_yet_registered_is_none(self, bus: EmbeddedBus) -> None:
        """Before its first event occurred, the asset does not exist as of that time."""
        await scenario(bus)
        assert await asset_as_of(bus, "A2", occurred_at=T1, known_at=datetime.now(UTC)) is None
