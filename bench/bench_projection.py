"""Projection apply throughput: the asset registry through `apply_batch`, as the runner calls it.

~50,000 synthetic events (asset.registered for 25,000 assets, then a status change for each),
pre-serialised as bus records over 6 partitions and applied in batches of 1,000: decode,
redelivery and duplicate checks, the fold, batched upserts, event ids and tracking rows, one
transaction per batch. On SQLite (a temp file, synchronous=FULL) and on PostgreSQL
(HUB_TEST_PG_URL or the local server; a fresh database, dropped afterwards).

Each database is measured twice: with CPython's default GC thresholds, and with the gen0
threshold raised to 10,000. A batch keeps ~1,000 parsed events (pydantic models, ~20 tracked
objects each) alive, and at the default threshold of 700 young collections run every few
events and re-traverse them: about a quarter of the CPU time. The second figure is what a
process that raises the threshold at start-up gets.
"""

from __future__ import annotations

import gc
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.pg import drop_pg_database as _drop_pg_database
from bench.pg import fresh_pg_database as _fresh_pg_database
from bench.pg import pg_server as _pg_server
from hub.bus.partitioner import partition_for_key
from hub.ports import BusRecord
from projections.assets.registry import AssetRegistry, count_assets
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from schemas._base import DeptRef, Identifier, Money
from schemas.assets import (
    AssetDetails,
    AssetRegistered,
    AssetRegisteredPayload,
    AssetStatus,
    AssetStatusChanged,
    StatusChangedPayload,
)
from schemas.catalogue import dump_event
from schemas.envelope import Source

ASSETS = 25_000
BATCH = 1_000
PARTITIONS = 6
TOPIC = "canonical.asset.v1"
TUNED_GC = (10_000, 20, 20)
DEPTS = [DeptRef(code=f"D{i:02d}", name=f"科室{i:02d}") for i in range(40)]


def synthetic_records() -> list[BusRecord]:
    """Registrations, then one status change per asset, as bus records in publish order."""
    source = Source(system="hrp", site="bench", message_id="bench-ledger", adapter_version="bench")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    events = []
    for i in range(ASSETS):
        asset = f"AST-{i:08d}"
        events.append(
            AssetRegistered(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"reg-{i}"),
                occurred_at=t0,
                recorded_at=t0,
                source=source,
                subject=asset,
                payload=AssetRegisteredPayload(
                    identifiers=[Identifier(scheme="hrp.card", value=f"ZC-{i:08d}")],
                    details=AssetDetails(
                        name="多参数监护仪",
                        model="iMEC10",
                        manufacturer="迈瑞",
                        department=DEPTS[i % len(DEPTS)],
                        original_value=Money(amount=Decimal("38500.00")),
                        status=AssetStatus.IN_USE,
                    ),
                ),
            )
        )
    later = t0 + timedelta(days=30)
    events += [
        AssetStatusChanged(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"status-{i}"),
            occurred_at=later,
            recorded_at=later,
            source=source,
            subject=f"AST-{i:08d}",
            payload=StatusChangedPayload(status=AssetStatus.UNDER_REPAIR, status_text="维修中"),
        )
        for i in range(ASSETS)
    ]
    next_offset = [0] * PARTITIONS
    out = []
    for event in events:
        p = partition_for_key(event.subject, PARTITIONS)
        out.append(BusRecord(TOPIC, p, next_offset[p], event.subject, dump_event(event), (), 0))
        next_offset[p] += 1
    return out


def measure(url: str, records: list[BusRecord], *, gc_threshold: tuple[int, int, int] | None = None) -> float:
    """Events per second applying `records` in batches on the database at `url`."""
    engine = make_engine(url)
    saved = gc.get_threshold()
    try:
        projection = AssetRegistry()
        ensure_tables(engine, projection)
        if gc_threshold is not None:
            gc.set_threshold(*gc_threshold)
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            apply_batch(engine, projection, records[start : start + BATCH])
        elapsed = time.perf_counter() - started
        gc.set_threshold(*saved)
        with engine.connect() as conn:
            if count_assets(conn) != ASSETS:
                raise RuntimeError("bench run did not produce the expected registry")
    finally:
        gc.set_threshold(*saved)
        engine.dispose()
    return len(records) / elapsed


async def run(report) -> None:
    records = synthetic_records()
    note = f"{len(records):,} events, batches of {BATCH:,}"
    for label, threshold in (("default GC", None), ("gen0 GC threshold 10,000", TUNED_GC)):
        with tempfile.TemporaryDirectory(prefix="bench-projection-") as tmp:
            rate = measure(f"sqlite:///{Path(tmp) / 'readmodels.db'}", records, gc_threshold=threshold)
        report.add(
            "projection",
            f"asset registry apply, SQLite, {label}",
            rate,
            "events/s",
            aim=">= 20,000",
            note=note,
        )

    server = _pg_server()
    if server is None:
        report.skip("projection apply on PostgreSQL", "no server at HUB_TEST_PG_URL or 127.0.0.1:5432")
        return
    for label, threshold in (("default GC", None), ("gen0 GC threshold 10,000", TUNED_GC)):
        url, admin = _fresh_pg_database(server)
        try:
            rate = measure(url, records, gc_threshold=threshold)
        finally:
            _drop_pg_database(url, admin)
            admin.dispose()
        report.add(
            "projection",
            f"asset registry apply, PostgreSQL, {label}",
            rate,
            "events/s",
            aim=">= 15,000",
            note=note,
        )
