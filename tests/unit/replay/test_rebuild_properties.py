"""Property: a rebuild equals the live tables for any stream, contested identifiers included.

The live runner reads the six partitions in small batches, the rebuild in one: the two see the
partitions interleaved differently, so every table (the crosswalk, conflicts and derived events
included) must be a function of the events and their order within each partition only.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.bus.embedded import EmbeddedBus
from projections.assets.registry import METADATA, AssetRegistry
from projections.runtime.db import write_transaction
from projections.runtime.derived import OUTBOX_METADATA
from projections.runtime.tracking import TRACKING_METADATA
from replay.rebuild import check_projection
from schemas.assets import AssetStatus
from tests.unit.projections.factories import registered, status_changed
from tests.unit.projections.registry_factories import link
from tests.unit.replay.streams import T0, publish
from tests.unit.replay.test_rebuild import run_live
from topics.catalogue import CATALOGUE

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.envelope import EventBase

ASSETS = 4
SHARED = ("U-0", "U-1")


@st.composite
def contested_streams(draw: st.DrawFn) -> list[EventBase]:
    """Registrations (some naming a shared UDI), mapping and person links of shared UDIs by
    registered assets, private links, status changes; business times that tie and go backwards;
    re-published events."""
    out: list[EventBase] = []
    registered_assets: set[str] = set()
    for i in range(draw(st.integers(1, 30))):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # re-published after a translator crash
            continue
        asset = f"A{draw(st.integers(0, ASSETS - 1))}"
        at = T0 + timedelta(hours=draw(st.integers(0, 5)))
        label = f"p{i}"
        kind = draw(st.integers(0, 4))
        shared = draw(st.sampled_from(SHARED))
        if kind == 0:
            udi = draw(st.sampled_from([None, *SHARED]))
            out.append(registered(label, asset, at=at, card=f"C-{asset}", udi=udi))
            registered_assets.add(asset)
        elif kind in {1, 2} and asset in registered_assets:
            by = "person" if kind == 2 else "mapping"
            out.append(
                link(label, asset, "udi", shared, by=by, actor="王" if by == "person" else None, at=at)
            )
        elif kind == 3:
            status = draw(st.sampled_from([AssetStatus.IDLE, AssetStatus.IN_USE]))
            out.append(status_changed(label, asset, status, at=at))
        else:
            out.append(link(label, asset, "udi", f"U-{asset}", at=at))
    return out


def _empty(live: Engine) -> None:
    """Drop what the previous example left, so each starts from an empty read-model database."""
    with write_transaction(live) as conn:
        for metadata in (METADATA, TRACKING_METADATA, OUTBOX_METADATA):
            metadata.drop_all(conn)


async def _live_then_check(live: Engine, stream: list[EventBase], batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hub-prop-") as tmp:
        bus = EmbeddedBus(Path(tmp) / "bus.sqlite3")
        await bus.start()
        try:
            await bus.ensure_topics(CATALOGUE)
            await publish(bus, stream)
            await run_live(bus, live, batch_size=batch)
            report = await check_projection(bus, live, AssetRegistry())
        finally:
            await bus.close()
    assert report.comparison is not None
    assert report.comparison.equal, report.comparison.difference


class TestRebuildEqualsLive:
    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(stream=contested_streams(), batch=st.integers(1, 9))
    def test_a_rebuild_equals_live_with_contested_identifiers(
        self, live: Engine, stream: list[EventBase], batch: int
    ) -> None:
        """Assets claiming one UDI, by mapping and by people, live in small batches: the rebuild is equal."""
        _empty(live)
        asyncio.run(_live_then_check(live, stream, batch))
