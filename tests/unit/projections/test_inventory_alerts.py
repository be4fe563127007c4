"""Below-minimum alerts: one per crossing, re-armed by replenishment, published once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hub.bus.embedded import EmbeddedBus
from hub.ports import event_out_record
from projections.inventory.alerts import ADAPTER_VERSION, list_alerts
from projections.inventory.projection import Inventory, InventoryConfig
from projections.runtime.runner import ProjectionRunner
from schemas.derived import InventoryBelowMinimum, InventoryReorderRequested
from schemas.ids import event_id_for
from tests.unit.projections.test_inventory_factories import (
    CENTRAL,
    OR,
    STENT,
    TOPIC,
    Feed,
    at,
    consumed,
    counted,
    inventory_engine,
    key,
    received,
    staged,
    stent_master,
    threshold,
    transferred,
)
from topics.catalogue import BY_NAME

DERIVED = "derived.inventory.v1"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield from inventory_engine(db_url)


@pytest.fixture
def feed(engine: Engine) -> Feed:
    return Feed(engine)


def below_id(crossing: int, place=CENTRAL) -> str:
    return str(event_id_for("hub", f"below_min:{STENT}:{key(place)}", crossing))


def reorder_id(crossing: int, place=CENTRAL) -> str:
    return str(event_id_for("hub", f"reorder:{STENT}:{key(place)}", crossing))


def stocked(feed: Feed) -> None:
    """Master, threshold 10..40 at the central store, 15 received."""
    feed.apply(
        stent_master(),
        threshold("h1", STENT, CENTRAL, 10, 40, when=at(0)),
        received("r1", STENT, 15, when=at(1)),
    )


class TestCrossing:
    def test_a_crossing_raises_one_alert_and_one_reorder(self, engine: Engine, feed: Feed) -> None:
        """Going from >= minimum to below publishes below_minimum and reorder_requested once each."""
        stocked(feed)
        feed.apply(consumed("c1", STENT, 6, place=CENTRAL, when=at(2)))
        events = staged(engine)
        assert [type(e) for e in events] == [InventoryBelowMinimum, InventoryReorderRequested]
        below, reorder = events
        assert (below.payload.on_hand, below.payload.minimum, below.payload.location) == (
            Decimal(9),
            Decimal(10),
            CENTRAL,
        )
        assert (reorder.payload.quantity, reorder.payload.supplier) == (Decimal(31), "华东医疗供应链有限公司")

    def test_staying_below_publishes_nothing_more(self, engine: Engine, feed: Feed) -> None:
        """However many events keep the place below its minimum, in one batch or many, one alert stands."""
        stocked(feed)
        feed.apply(*[consumed(f"c{i}", STENT, 1, place=CENTRAL, when=at(2 + i)) for i in range(8)])
        feed.apply(consumed("c9", STENT, 1, place=CENTRAL, when=at(20)))
        feed.apply(received("r2", STENT, 2, when=at(21)))  # up, but still under 10
        assert [str(e.event_id) for e in staged(engine)] == [below_id(1), reorder_id(1)]

    def test_replenishment_rearms_and_a_second_crossing_raises_a_second_alert(
        self, engine: Engine, feed: Feed
    ) -> None:
        """Back to the minimum re-arms; the next fall is crossing number 2, with ids of its own."""
        stocked(feed)
        feed.apply(consumed("c1", STENT, 6, place=CENTRAL, when=at(2)))
        feed.apply(received("r2", STENT, 30, when=at(3)))
        feed.apply(consumed("c2", STENT, 30, place=CENTRAL, when=at(4)))
        ids = {str(e.event_id) for e in staged(engine)}
        assert ids == {below_id(1), reorder_id(1), below_id(2), reorder_id(2)}
        assert below_id(1) != below_id(2)

    def test_reaching_exactly_the_minimum_is_not_below(self, engine: Engine, feed: Feed) -> None:
        """At the minimum is fine: only strictly less crosses."""
        stocked(feed)
        feed.apply(consumed("c1", STENT, 5, place=CENTRAL, when=at(2)))
        assert staged(engine) == []

    def test_a_raised_minimum_is_a_crossing(self, engine: Engine, feed: Feed) -> None:
        """A new threshold above what is on hand crosses too: the place now needs refilling."""
        stocked(feed)
        feed.apply(threshold("h2", STENT, CENTRAL, 20, 50, when=at(3)))
        (below, reorder) = staged(engine)
        assert (below.payload.minimum, reorder.payload.quantity) == (Decimal(20), Decimal(35))

    def test_a_threshold_ahead_of_the_first_delivery_is_no_shortage(self, engine: Engine, feed: Feed) -> None:
        """A place that never held stock is not below; a first, too small, delivery is below but rose:
        it is listed and publishes nothing. The first fall from the minimum is crossing number 1."""
        feed.apply(threshold("h1", STENT, OR, 5, 10, when=at(0)))
        assert staged(engine) == []
        feed.apply(transferred("t1", STENT, 2, when=at(1)))
        assert staged(engine) == []
        with engine.connect() as conn:
            rows, _ = list_alerts(conn)
        assert [(r["on_hand"], r["crossings"]) for r in rows] == [(Decimal(2), 0)]
        feed.apply(transferred("t2", STENT, 4, when=at(2)), consumed("c1", STENT, 2, when=at(3)))
        assert [str(e.event_id) for e in staged(engine)] == [below_id(1, OR), reorder_id(1, OR)]

    def test_a_replenishment_still_under_the_minimum_raises_nothing(self, engine: Engine, feed: Feed) -> None:
        """Drained to 0 (one crossing), then filled from 0 to under the minimum in steps: no second alert."""
        feed.apply(threshold("h1", STENT, OR, 5, 10, when=at(0)), transferred("t1", STENT, 8, when=at(1)))
        feed.apply(consumed("c1", STENT, 8, when=at(2)))
        feed.apply(transferred("t2", STENT, 2, when=at(3)))
        feed.apply(transferred("t3", STENT, 2, when=at(4)))
        assert [str(e.event_id) for e in staged(engine)] == [below_id(1, OR), reorder_id(1, OR)]

    def test_no_reorder_when_the_maximum_is_not_above_stock(self, engine: Engine, feed: Feed) -> None:
        """A maximum at or under what is on hand leaves nothing to order: the alert goes alone."""
        feed.apply(received("r1", STENT, 3, when=at(0)), threshold("h1", STENT, CENTRAL, 10, 3, when=at(1)))
        assert [type(e) for e in staged(engine)] == [InventoryBelowMinimum]

    def test_reorder_requests_can_be_switched_off(self, engine: Engine) -> None:
        """With reorder_requests off, only the below-minimum alert is published."""
        feed = Feed(engine, Inventory(InventoryConfig(reorder_requests=False)))
        stocked(feed)
        feed.apply(consumed("c1", STENT, 6, place=CENTRAL, when=at(2)))
        assert [type(e) for e in staged(engine)] == [InventoryBelowMinimum]

    def test_a_late_consumption_before_a_stocktake_raises_nothing(self, engine: Engine, feed: Feed) -> None:
        """A scan already reflected in a count leaves the level, and so the alert state, alone."""
        stocked(feed)
        feed.apply(counted("k1", STENT, 12, when=at(5)))
        feed.apply(consumed("late", STENT, 6, place=CENTRAL, when=at(4)))
        assert staged(engine) == []

    def test_the_derived_envelope_traces_back_to_its_trigger(self, engine: Engine, feed: Feed) -> None:
        """Derived events are the hub's, keyed by item, timed and caused by the event that crossed."""
        stocked(feed)
        trigger = consumed("c1", STENT, 6, place=CENTRAL, when=at(2))
        feed.apply(trigger)
        below = staged(engine)[0]
        assert (below.source.system.value, below.source.adapter_version, below.source.site) == (
            "hub",
            ADAPTER_VERSION,
            "main",
        )
        assert (below.subject, below.occurred_at, below.causation_id) == (
            STENT,
            trigger.occurred_at,
            str(trigger.event_id),
        )


class TestAlertList:
    def test_lists_places_below_with_since_and_suggested_reorder(self, engine: Engine, feed: Feed) -> None:
        """The alert list shows what is below now, since when, and how much refills to the maximum."""
        stocked(feed)
        feed.apply(consumed("c1", STENT, 6, place=CENTRAL, when=at(2)))
        with engine.connect() as conn:
            rows, total = list_alerts(conn)
        assert total == 1
        row = rows[0]
        assert (row["on_hand"], row["suggested_reorder"], row["below_since"], row["crossings"]) == (
            Decimal(9),
            Decimal(31),
            at(2),
            1,
        )
        assert (row["item_code"], row["supplier"], row["department_name"]) == (
            "STENT",
            "华东医疗供应链有限公司",
            "中心库房",
        )

    def test_a_refilled_place_leaves_the_list(self, engine: Engine, feed: Feed) -> None:
        """Re-armed places are no longer listed."""
        stocked(feed)
        feed.apply(consumed("c1", STENT, 6, place=CENTRAL, when=at(2)), received("r2", STENT, 5, when=at(3)))
        with engine.connect() as conn:
            assert list_alerts(conn) == ([], 0)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([BY_NAME[TOPIC], BY_NAME[DERIVED]])
    yield b
    await b.close()


class TestPublishedOnce:
    async def test_the_derived_topic_gets_each_alert_once(self, engine: Engine, bus: EmbeddedBus) -> None:
        """Through the runner: a re-published input stream and a restart publish no second copy."""
        stream = [
            stent_master(),
            threshold("h1", STENT, CENTRAL, 10, 40, when=at(0)),
            received("r1", STENT, 15, when=at(1)),
            *[consumed(f"c{i}", STENT, 3, place=CENTRAL, when=at(2 + i)) for i in range(4)],
        ]
        await bus.publish(TOPIC, [event_out_record(e) for e in stream])
        runner = ProjectionRunner(Inventory(), bus, engine)
        await runner.run_until_idle()
        await runner.close()
        await bus.publish(TOPIC, [event_out_record(e) for e in stream])  # a translator's crash-retry
        restarted = ProjectionRunner(Inventory(), bus, engine)
        await restarted.run_until_idle()
        await restarted.close()
        reader = await bus.consumer([DERIVED], group=None)
        seen = []
        while batch := await reader.poll(timeout_s=0.2):
            seen += [json.loads(r.value)["event_id"] for r in batch]
        await reader.close()
        assert sorted(seen) == sorted([below_id(1), reorder_id(1)])
