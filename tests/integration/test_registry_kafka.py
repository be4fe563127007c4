"""The asset registry runner on the Kafka bus (the Tansu test broker): apply, then rebuild elsewhere.

Tansu's group joins take seconds (TEST-BROKER.md), so this file joins the group twice only; the
read-model side is covered on both databases by the unit tests. Its end offsets are unreliable,
so nothing here asserts lag.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from hub.bus.kafka import KafkaBus
from hub.ports import OutRecord
from projections.assets.registry import METADATA, AssetRegistry, count_assets
from projections.runtime.db import make_engine
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import TRACKING_METADATA
from schemas.catalogue import dump_event
from tests.unit.projections.factories import TOPIC, digest, registered, status_changed
from topics.catalogue import BY_NAME

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    b = KafkaBus(kafka_bootstrap, client_id="registry-test")
    await b.start()
    yield b
    await b.close()


class TestRunnerOnKafka:
    async def test_applies_the_topic_then_a_fresh_database_rebuilds_it_identically(
        self, bus: KafkaBus, pg_url: str, tmp_path: Path
    ) -> None:
        """A runner on PostgreSQL applies all; a new SQLite read model ignores the group commit, rebuilds."""
        prefix = f"t{uuid.uuid4().hex[:8]}."
        await bus.ensure_topics([BY_NAME[TOPIC]], prefix)
        events = [registered(f"r{i}", f"A{i}") for i in range(30)]
        events += [status_changed(f"s{i}", f"A{i}", "under_repair") for i in range(0, 30, 3)]
        await bus.publish(prefix + TOPIC, [OutRecord(key=e.subject, value=dump_event(e)) for e in events])

        pg = make_engine(pg_url)
        runner = ProjectionRunner(AssetRegistry(), bus, pg, prefix=prefix)
        assert await runner.run_until_idle(idle_polls=3, timeout_s=1.0) == 40
        await runner.close()
        with pg.connect() as conn:
            assert count_assets(conn) == 30

        sqlite = make_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
        rebuild = ProjectionRunner(AssetRegistry(), bus, sqlite, prefix=prefix)
        assert await rebuild.run_until_idle(idle_polls=3, timeout_s=1.0) == 40
        await rebuild.close()
        assert digest(sqlite, METADATA, TRACKING_METADATA) == digest(pg, METADATA, TRACKING_METADATA)
        pg.dispose()
        sqlite.dispose()
