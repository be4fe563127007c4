"""Scaling out on the embedded bus: two runners of one projection group share partitions, effect once."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord
from projections.assets.registry import METADATA, AssetRegistry, count_assets
from projections.runtime.db import make_engine
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import TRACKING_METADATA, ensure_tables
from schemas.assets import AssetStatus
from schemas.catalogue import dump_event
from tests.unit.projections.factories import TOPIC, digest, registered, status_changed
from topics.catalogue import BY_NAME

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy import Engine

STATUSES = list(AssetStatus)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    """An embedded bus with quick group heartbeats, so rebalances happen within the test."""
    b = EmbeddedBus(tmp_path / "bus.sqlite3", session_timeout_s=2.0, heartbeat_interval_s=0.2)
    await b.start()
    await b.ensure_topics([BY_NAME[TOPIC]])
    yield b
    await b.close()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The shared read-model database both runners write to."""
    eng = make_engine(db_url)
    ensure_tables(eng, AssetRegistry())
    yield eng
    eng.dispose()


async def _publish_wave(bus: EmbeddedBus, wave: int, assets: int) -> None:
    events = [registered(f"w{wave}-r{i}", f"A{i}") for i in range(assets)]
    events += [
        status_changed(f"w{wave}-s{i}", f"A{i}", STATUSES[(wave + i) % len(STATUSES)]) for i in range(assets)
    ]
    await bus.publish(TOPIC, [OutRecord(key=e.subject, value=dump_event(e)) for e in events])


class TestTwoRunnersOneGroup:
    async def test_a_member_joining_mid_stream_changes_nothing_in_the_result(
        self, bus: EmbeddedBus, engine: Engine, tmp_path: Path
    ) -> None:
        """A second runner joins mid-stream: partitions move, yet every event applies exactly once."""
        first = ProjectionRunner(AssetRegistry(), bus, engine, batch_size=50)
        second = ProjectionRunner(AssetRegistry(), bus, engine, batch_size=50)
        stop = asyncio.Event()
        with capture_logs() as logs:
            await _publish_wave(bus, 0, 120)
            tasks = [asyncio.create_task(first.run_forever(stop))]
            await asyncio.sleep(0.3)
            tasks.append(asyncio.create_task(second.run_forever(stop)))
            for wave in range(1, 4):
                await _publish_wave(bus, wave, 120)
                await asyncio.sleep(0.3)
            total = sum((await bus.end_offsets(TOPIC)).values())
            for _ in range(200):
                if await first.lag() + await second.lag() == 0 and first._assigned and second._assigned:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
            owned = (first._assigned, second._assigned)
            await first.close()
            await second.close()

        assert owned[0]
        assert owned[1]
        assert not owned[0] & owned[1]
        batches = [e for e in logs if e["event"] == "projection_batch_applied"]
        assert sum(e["applied"] for e in batches) == total == 960
        assert sum(e["duplicates"] for e in batches) == 0
        with engine.connect() as conn:
            assert count_assets(conn) == 120

        rebuilt = make_engine(f"sqlite:///{tmp_path / 'single.db'}")
        single = ProjectionRunner(AssetRegistry(), bus, rebuilt)
        await single.run_until_idle()
        await single.close()
        assert digest(rebuilt, METADATA, TRACKING_METADATA) == digest(engine, METADATA, TRACKING_METADATA)
        rebuilt.dispose()
