"""SLA breaches: concluded at the right time by tick with an injected clock, and on apply from late events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hub.bus.embedded import EmbeddedBus
from hub.ports import event_out_record
from projections.runtime.runner import ProjectionRunner
from projections.work_orders.config import SlaTarget, WorkOrderConfig
from projections.work_orders.projection import WorkOrders
from projections.work_orders.tables import METADATA
from schemas.derived import WorkOrderSlaBreached
from schemas.ids import event_id_for
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    T0,
    Feed,
    assigned,
    cancelled,
    completed,
    on_hold,
    projection_database,
    requested,
    reset,
    staged,
    started,
)
from topics.catalogue import BY_NAME


@pytest.fixture(scope="module", params=DB_PARAMS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from projection_database(request, tmp_path_factory, WorkOrders())


@pytest.fixture
def wo_engine(module_engine: Engine) -> Engine:
    """The module's read-model database (SQLite, then PostgreSQL), work-order tables empty."""
    reset(module_engine, METADATA)
    return module_engine


S = timedelta(seconds=1)
H = timedelta(hours=1)
URGENT_RESPONSE = timedelta(minutes=30)


def levels(events: list) -> list[tuple[str, int]]:
    return sorted((e.payload.kind, e.payload.escalation_level) for e in events)


class TestTick:
    def test_no_breach_one_second_before_the_target(self, wo_engine: Engine) -> None:
        """An urgent request not answered 29 min 59 s later is not breached yet."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"))
        assert feed.tick(T0 + URGENT_RESPONSE - S) == []

    def test_breach_at_the_target_exactly(self, wo_engine: Engine) -> None:
        """At 30 min unanswered, response level 1 is concluded, due at the target instant."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"))
        derived = feed.tick(T0 + URGENT_RESPONSE)
        assert [(e.type, e.payload.kind, e.payload.escalation_level, e.payload.due_at) for e in derived] == [
            ("workorder.sla_breached", "response", 1, T0 + URGENT_RESPONSE)
        ]

    def test_each_level_once_then_level_two_at_twice_the_target(self, wo_engine: Engine) -> None:
        """Ticking again concludes nothing new; at 2x the target level 2 comes, once."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"))
        first = feed.tick(T0 + URGENT_RESPONSE)
        again = feed.tick(T0 + URGENT_RESPONSE + 10 * S)
        before_two = feed.tick(T0 + 2 * URGENT_RESPONSE - S)
        two = feed.tick(T0 + 2 * URGENT_RESPONSE)
        two_again = feed.tick(T0 + 2 * URGENT_RESPONSE + S)
        assert (levels(first), again, before_two, levels(two), two_again) == (
            [("response", 1)],
            [],
            [],
            [("response", 2)],
            [],
        )

    def test_level_three_at_four_times_and_resolution_levels(self, wo_engine: Engine) -> None:
        """At 4 h an urgent order has response levels 1-3 and resolution level 1, the row says so."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"))
        derived = feed.tick(T0 + 4 * H)
        row = feed.order("WO-1")
        assert (levels(derived), row["response_breach_level"], row["resolution_breach_level"]) == (
            [("resolution", 1), ("response", 1), ("response", 2), ("response", 3)],
            3,
            1,
        )

    def test_ids_are_deterministic_and_events_carry_hub_provenance(self, wo_engine: Engine) -> None:
        """The breach id is uuid5 over (work order, kind, level); source is the hub, cause the request."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"))
        (event,) = feed.tick(T0 + URGENT_RESPONSE)
        request_id = str(requested("r", "WO-1").event_id)
        assert (
            event.event_id,
            event.source.system.value,
            event.source.adapter_version,
            event.causation_id,
            event.subject,
        ) == (
            event_id_for("hub", "workorder.sla_breached:WO-1:response", 1),
            "hub",
            "hub/work_orders/1",
            request_id,
            "WO-1",
        )

    def test_answered_order_has_no_response_breach_later(self, wo_engine: Engine) -> None:
        """An assignment 10 minutes in stops the response clock: no response breach at any later tick."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"), assigned("a", "WO-1", at=T0 + 10 * 60 * S))
        assert levels(feed.tick(T0 + 3 * H)) == []

    def test_cancelled_order_breaches_nothing_more(self, wo_engine: Engine) -> None:
        """A cancellation before the due time stops both clocks."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"), cancelled("x", "WO-1", at=T0 + 10 * 60 * S))
        assert feed.tick(T0 + 30 * H) == []

    def test_priority_targets_are_configurable(self, wo_engine: Engine) -> None:
        """With a 10-minute urgent response target the breach comes at 10 minutes."""
        sla = dict(WorkOrderConfig().sla)
        sla["urgent"] = SlaTarget(timedelta(minutes=10), timedelta(hours=1))
        feed = Feed(wo_engine, WorkOrders(WorkOrderConfig(sla=sla)))
        feed(requested("r", "WO-1", priority="urgent"))
        assert (feed.tick(T0 + 10 * 60 * S - S), levels(feed.tick(T0 + 10 * 60 * S))) == (
            [],
            [("response", 1)],
        )


class TestHold:
    def test_time_on_hold_pushes_the_resolution_due_time(self, wo_engine: Engine) -> None:
        """Two hours on hold move an urgent order's 4 h resolution deadline to 6 h."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1", priority="urgent"),
            started("s", "WO-1", at=T0 + 10 * 60 * S),
            on_hold("h", "WO-1", at=T0 + H),
            started("s2", "WO-1", at=T0 + 3 * H),
        )
        row = feed.order("WO-1")
        assert (row["resolution_due_at"], feed.tick(T0 + 6 * H - S), levels(feed.tick(T0 + 6 * H))) == (
            T0 + 6 * H,
            [],
            [("resolution", 1)],
        )

    def test_an_order_still_on_hold_is_not_breached(self, wo_engine: Engine) -> None:
        """While on hold the clock is paused: no resolution breach however late the tick."""
        feed = Feed(wo_engine)
        feed(
            requested("r", "WO-1", priority="urgent"),
            started("s", "WO-1", at=T0 + 60 * S),
            on_hold("h", "WO-1", at=T0 + H),
        )
        assert (feed.order("WO-1")["resolution_due_at"], feed.tick(T0 + 100 * H)) == (None, [])

    def test_hold_counts_when_not_excluded(self, wo_engine: Engine) -> None:
        """With exclude_on_hold=False an order on hold breaches at the plain target."""
        feed = Feed(wo_engine, WorkOrders(WorkOrderConfig(exclude_on_hold=False)))
        feed(
            requested("r", "WO-1", priority="urgent"),
            started("s", "WO-1", at=T0 + 60 * S),
            on_hold("h", "WO-1", at=T0 + H),
        )
        assert levels(feed.tick(T0 + 4 * H)) == [("resolution", 1)]


class TestOnApply:
    def test_late_completion_concludes_its_breaches_on_apply(self, wo_engine: Engine) -> None:
        """A completion 9 h after an urgent request (4 h target) stages resolution levels 1 and 2 at once."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"), assigned("a", "WO-1", at=T0 + 60 * S))
        feed(completed("c", "WO-1", at=T0 + 9 * H))
        breaches = [e for e in staged(wo_engine) if isinstance(e, WorkOrderSlaBreached)]
        assert (levels(breaches), {e.causation_id for e in breaches}) == (
            [("resolution", 1), ("resolution", 2)],
            {str(completed("c", "WO-1", at=T0).event_id)},
        )

    def test_completion_in_time_concludes_nothing(self, wo_engine: Engine) -> None:
        """Answered and completed within the targets: no breach staged, none at a later tick."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"), assigned("a", "WO-1", at=T0 + 60 * S))
        feed(completed("c", "WO-1", at=T0 + 4 * H - S))
        assert (staged(wo_engine), feed.tick(T0 + 100 * H)) == ([], [])

    def test_response_exactly_at_the_target_is_late(self, wo_engine: Engine) -> None:
        """The target is the last instant on time only if answered before it: answered at 30:00 is a breach."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"), assigned("a", "WO-1", at=T0 + URGENT_RESPONSE))
        assert levels(staged(wo_engine)) == [("response", 1)]

    def test_tick_then_late_completion_does_not_repeat_a_level(self, wo_engine: Engine) -> None:
        """Level 1 concluded by a tick is not concluded again when the late completion arrives."""
        feed = Feed(wo_engine)
        feed(requested("r", "WO-1", priority="urgent"), assigned("a", "WO-1", at=T0 + 60 * S))
        ticked = feed.tick(T0 + 5 * H)
        feed(completed("c", "WO-1", at=T0 + 9 * H))
        applied = [
            e for e in staged(wo_engine) if e.causation_id == str(completed("c", "WO-1", at=T0).event_id)
        ]
        assert (levels(ticked), levels(applied)) == ([("resolution", 1)], [("resolution", 2)])


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


class TestRunner:
    async def test_runner_publishes_each_breach_once_at_its_clock(
        self, wo_engine: Engine, tmp_path: Path
    ) -> None:
        """Through the runner and the embedded bus: nothing before the target, level 1 at it, once."""
        bus = EmbeddedBus(tmp_path / "bus.sqlite3")
        await bus.start()
        await bus.ensure_topics(
            [BY_NAME[t] for t in ("canonical.workorder.v1", "canonical.asset.v1", "derived.workorder.v1")]
        )
        await bus.publish(
            "canonical.workorder.v1", [event_out_record(requested("r", "WO-1", priority="urgent"))]
        )
        clock = FixedClock(T0 + URGENT_RESPONSE - S)
        runner = ProjectionRunner(WorkOrders(), bus, wo_engine, clock=clock)
        await runner.run_until_idle()
        clock.at = T0 + URGENT_RESPONSE
        await runner.tick()
        await runner.tick()
        clock.at = T0 + URGENT_RESPONSE + S
        await runner.run_until_idle()
        await runner.close()
        reader = await bus.consumer(["derived.workorder.v1"], group=None)
        published = [json.loads(r.value) for r in await reader.poll(timeout_s=0.5)]
        await reader.close()
        await bus.close()
        assert [(p["type"], p["payload"]["kind"], p["payload"]["escalation_level"]) for p in published] == [
            ("workorder.sla_breached", "response", 1)
        ]
