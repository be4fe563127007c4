"""The worker's corrections of noted units (hub.translation.corrections, SnapshotDiffer.correct)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from hub.translation.snapshot_state import PostgresSnapshotStore
from hub.translation.snapshots import DiffResult, SnapshotDiffer
from schemas._base import DeptRef, LocationRef, SourceSystem
from schemas.envelope import Source
from schemas.ids import event_id_for
from schemas.inventory import ConsumedPayload, InventoryConsumed, InventoryConsumptionCorrected

if TYPE_CHECKING:
    from collections.abc import Callable

    OpenDiffer = Callable[[], SnapshotDiffer]  # the `open_differ` fixture (conftest): SQLite, PostgreSQL

T0 = datetime(2024, 6, 12, 2, 15, tzinfo=UTC)
CATH = LocationRef(department=DeptRef(code="0206", name="心导管室"))


def consumed(place: LocationRef, *, position: str = "FT1[1]") -> InventoryConsumed:
    return InventoryConsumed(
        event_id=event_id_for("his", "DFT1", position),
        occurred_at=T0,
        recorded_at=T0,
        source=Source(system=SourceSystem.HIS, site="main", message_id="DFT1", adapter_version="his/1"),
        subject="ITM-HC0301",
        payload=ConsumedPayload(location=place, quantity=Decimal(1), item_code="HC0301"),
    )


def correct(differ: SnapshotDiffer, event: InventoryConsumed, noted: bool) -> DiffResult:
    return differ.correct("his", DiffResult(events=[event]), {str(event.event_id)} if noted else set())


class TestCorrections:
    async def test_noted_then_fixed_publishes_one_correction_and_never_the_changed_original(
        self, open_differ: OpenDiffer
    ) -> None:
        differ = open_differ()
        first = consumed(LocationRef())
        published = correct(differ, first, noted=True)
        assert published.events == [first]
        await differ.commit(published)
        assert correct(differ, first, noted=True).events == [], "the same again: already on the log"

        fixed = consumed(CATH)
        crashed = correct(differ, fixed, noted=False)  # a retry after the fix; not committed (a crash)
        again = correct(differ, fixed, noted=False)
        (fix,) = again.events
        assert isinstance(fix, InventoryConsumptionCorrected)
        assert fix.event_id == crashed.events[0].event_id, "a re-run publishes the same correction id"
        assert fix.event_id != fixed.event_id
        assert (fix.payload.corrects, fix.payload.consumption, fix.payload.previous) == (
            first.event_id,
            fixed.payload,
            first.payload,
        )
        assert (fix.occurred_at, fix.causation_id) == (first.occurred_at, str(first.event_id))
        await differ.commit(again)
        assert correct(differ, fixed, noted=False).events == [], "fixed and retried again: nothing new"
        differ.close()

    async def test_units_never_noted_pass_through_untouched(self, open_differ: OpenDiffer) -> None:
        differ = open_differ()
        plain = consumed(CATH, position="FT1[2]")
        result = correct(differ, plain, noted=False)
        assert (result.events, result.noted) == ([plain], [])
        changed = consumed(LocationRef(department=DeptRef(code="0101")), position="FT1[2]")
        assert correct(differ, changed, noted=False).events == [changed], "not remembered: as before"
        differ.close()


@pytest.mark.postgres
async def test_a_noted_unit_fixed_on_another_node_is_corrected(pg_url: str) -> None:
    """Noted on node A, retried after the fix on node B: B publishes the correction, not the original."""
    node_a, node_b = (
        SnapshotDiffer(PostgresSnapshotStore(pg_url)),
        SnapshotDiffer(PostgresSnapshotStore(pg_url)),
    )
    first = consumed(LocationRef())
    await node_a.commit(correct(node_a, first, noted=True))
    (fix,) = correct(node_b, consumed(CATH), noted=False).events
    assert isinstance(fix, InventoryConsumptionCorrected)
    assert fix.payload.corrects == first.event_id
    node_a.close()
    node_b.close()
