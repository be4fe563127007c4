"""Replay from Kafka (the Tansu test broker): rebuild equals live, history seeks by time, as-of answers.

Tansu differs from Apache Kafka where it matters here (TEST-BROKER.md): its end offsets are low
(the last batch's base offset + 1), so a replay reads on past them to the real end (settle); it
has no time index, so seeking by time goes through the bus's fallback scan; group joins are slow,
so only the live runner joins a group (a replay never does).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

import pytest
from sqlalchemy import Engine

from hub.bus.kafka import KafkaBus
from hub.ports import event_out_record
from projections.assets.registry import AssetRegistry
from projections.runtime.runner import ProjectionRunner
from replay.as_of import asset_as_of
from replay.history import SubjectKind, history
from replay.rebuild import rebuild
from schemas._base import DeptRef, Identifier
from schemas.catalogue import EVENT_CLASSES
from schemas.envelope import EventBase
from schemas.work_orders import AssignedPayload, RequestedPayload, StartedPayload
from tests.unit.projections.factories import registered
from tests.unit.replay.streams import ASSET_TOPIC, DEPTS, moved, random_stream, source
from topics.catalogue import CATALOGUE

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

T1 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[tuple[KafkaBus, str]]:
    """A started Kafka bus and a fresh topic prefix with the whole catalogue."""
    bus = KafkaBus(
        kafka_bootstrap, client_id="replay-test", session_timeout_ms=6_000, heartbeat_interval_ms=2_000
    )
    await bus.start()
    prefix = f"r{uuid.uuid4().hex[:8]}."
    await bus.ensure_topics(CATALOGUE, prefix)
    yield bus, prefix
    await bus.close()


async def publish(bus: KafkaBus, prefix: str, events: list) -> None:  # type: ignore[type-arg]
    await bus.publish(prefix + ASSET_TOPIC, [event_out_record(e) for e in events])


def make_step(kind: str, *, at: datetime) -> EventBase:
    """One step of work order WO-K1, recorded when it occurred."""
    payloads = {
        "requested": RequestedPayload(
            asset=Identifier(scheme="hrp.card", value="ZC-K1"),
            reporting_department=DeptRef(code="ICU"),
            symptom="报警",
        ),
        "assigned": AssignedPayload(engineer="王工"),
        "started": StartedPayload(),
    }
    cls = EVENT_CLASSES[f"workorder.{kind}"]
    return cls(
        event_id=uuid5(NAMESPACE_URL, f"k-{kind}"),
        occurred_at=at,
        recorded_at=at,
        source=source("oa", f"oa-{kind}"),
        subject="WO-K1",
        payload=payloads[kind],
    )


class TestKafka:
    async def test_a_rebuild_from_kafka_equals_the_live_tables(
        self, kafka: tuple[KafkaBus, str], live: Engine
    ) -> None:
        """A random stream applied by the live runner (consumer group) and rebuilt (manual reads) hash the same."""
        bus, prefix = kafka
        events = random_stream(21, 120)
        for start in range(
            0, len(events), 40
        ):  # several produce batches: Tansu's end offsets lag behind them
            await publish(bus, prefix, events[start : start + 40])
        runner = ProjectionRunner(AssetRegistry(), bus, live, prefix=prefix, batch_size=25)
        await runner.run_until_idle(idle_polls=3, timeout_s=1.0)
        await runner.close()
        report = await rebuild(bus, live, AssetRegistry(), prefix=prefix, check=True)
        assert report.comparison is not None
        assert report.comparison.equal, report.comparison.difference
        assert report.swapped
        assert report.records == len(events)

    async def test_history_since_seeks_by_time_through_the_fallback(
        self, kafka: tuple[KafkaBus, str]
    ) -> None:
        """history --since on a broker without a time index still lists exactly the later-recorded events."""
        bus, prefix = kafka
        steps = [
            make_step("requested", at=T1),
            make_step("assigned", at=T1 + timedelta(days=1)),
            make_step("started", at=T1 + timedelta(days=2)),
        ]
        await bus.publish(prefix + "canonical.workorder.v1", [event_out_record(e) for e in steps])
        everything = await history(bus, SubjectKind.WORKORDER, "WO-K1", prefix=prefix)
        later = await history(
            bus, SubjectKind.WORKORDER, "WO-K1", prefix=prefix, since=T1 + timedelta(hours=12)
        )
        assert [e.event_type for e in everything] == [
            "workorder.requested",
            "workorder.assigned",
            "workorder.started",
        ]
        assert [e.event_type for e in later] == ["workorder.assigned", "workorder.started"]

    async def test_as_of_from_kafka_shows_the_late_correction_only_once_known(
        self, kafka: tuple[KafkaBus, str]
    ) -> None:
        """The bitemporal answer for one asset is the same from Kafka as from the embedded log."""
        bus, prefix = kafka
        await publish(
            bus,
            prefix,
            [
                registered("q-reg", "Q1", at=T1 - timedelta(days=30), recorded=T1 - timedelta(days=30)),
                moved("q-move", "Q1", DEPTS[1], at=T1, recorded=T1),
                moved("q-fix", "Q1", DEPTS[2], at=T1 + timedelta(hours=1), recorded=T1 + timedelta(days=7)),
            ],
        )
        when = T1 + timedelta(hours=2)
        first = await asset_as_of(bus, "Q1", occurred_at=when, known_at=T1 + timedelta(days=1), prefix=prefix)
        fixed = await asset_as_of(bus, "Q1", occurred_at=when, known_at=T1 + timedelta(days=8), prefix=prefix)
        assert first is not None
        assert fixed is not None
        assert (first["department_name"], fixed["department_name"]) == (DEPTS[1].name, DEPTS[2].name)
