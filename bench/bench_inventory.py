"""Inventory read model: projection apply rate, and GET /inventory/stock and /inventory/trace latency.

Apply: a synthetic quarter of SPD traffic, pre-serialised as bus records over 6 partitions (keyed
by item, as the catalogue says) and applied through `apply_batch` in batches of 1,000 (decode, id
and offset bookkeeping, the fold, batched upserts, one transaction per batch), on SQLite (temp
file, synchronous=FULL) and PostgreSQL (HUB_TEST_PG_URL or the local server; a fresh database,
dropped afterwards). The mix, per item: its definition; thresholds at the central store and
four departments; two lots received at the central store (high-value items, one in ten, with
a serial per unit); a distribution of each lot to each department (high-value: one serialised
unit); consumption scans in one department of five (high-value: by serial, with a patient
token); a stocktake of each lot at the central store; a disposal of one lot in fifty.
400 items x 24 departments is ~29,000 events; many consumptions cross a minimum, so derived
events are staged too.

Latency: the same mix for 2,000 items (~100,000 stock rows, ~140,000 events) on SQLite, queried
in-process through build_hub + build_api and httpx (FastAPI, validation and JSON included, no network):
300 requests per endpoint after a warm-up. /inventory/stock over a mix of filters and pages;
/inventory/trace over serials, GS1 human-readable codes and lot codes.
"""

from __future__ import annotations

import gc
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench.pg import pg_server as _pg_server
from bench.wiring import api_client
from hub.bus.partitioner import partition_for_key
from hub.ports import BusRecord
from projections.inventory.projection import Inventory
from projections.inventory.tables import stock
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from schemas._base import DeptRef, LocationRef, Money
from schemas.catalogue import dump_event
from schemas.envelope import EventBase, Source
from schemas.inventory import (
    AdjustedPayload,
    Barcode,
    ConsumedPayload,
    DisposedPayload,
    InventoryAdjusted,
    InventoryConsumed,
    InventoryDisposed,
    InventoryItemDefined,
    InventoryReceived,
    InventoryThresholdSet,
    InventoryTransferred,
    ItemDefinedPayload,
    ReceivedPayload,
    ThresholdSetPayload,
    TransferredPayload,
)

if TYPE_CHECKING:
    import httpx


BATCH = 1_000
PARTITIONS = 6
REQUESTS = 300
TOPIC = "canonical.inventory.v1"
TUNED_GC = (10_000, 20, 20)
T0 = datetime(2024, 4, 1, 0, 0, tzinfo=UTC)
CENTRAL = LocationRef(department=DeptRef(code="9001", name="中心库房"))
DEPARTMENTS = [LocationRef(department=DeptRef(code=f"{i:04d}", name=f"科室{i:02d}")) for i in range(1, 25)]
SOURCE = Source(system="spd", site="bench", message_id="bench-quarter", adapter_version="bench")
UNITS_PER_LOT = 30


def gtin_for(i: int) -> str:
    body = f"694{i:010d}"
    total = sum(int(d) * (3 if k % 2 == 0 else 1) for k, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _event(cls: type[EventBase], label: str, item: str, hours: float, payload: object) -> EventBase:
    when = T0 + timedelta(hours=hours)
    return cls(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, label),
        occurred_at=when,
        recorded_at=when,
        source=SOURCE,
        subject=item,
        payload=payload,
    )


def quarter(items: int, departments: int = 24) -> list[EventBase]:
    """A quarter of SPD traffic for `items` items over `departments` departments (see the docstring)."""
    rng = random.Random(20240628)
    depts = DEPARTMENTS[:departments]
    out: list[EventBase] = []
    for i in range(items):
        out += _item_events(i, depts)
        for lot_no in range(2):
            out += _lot_events(i, lot_no, depts, rng)
    return out


def _item_events(i: int, depts: list[LocationRef]) -> list[EventBase]:
    item, high = f"ITM-{i:06d}", i % 10 == 0
    master = ItemDefinedPayload(
        item_code=f"DZ{i:05d}",
        name=f"耗材{i}",
        spec="标准",
        unit="个",
        gtin=gtin_for(i),
        high_value=high,
        category="高值耗材" if high else "普通耗材",
        supplier="华东医疗",
        price=Money(amount=Decimal("12.50")),
    )
    out = [_event(InventoryItemDefined, f"def-{i}", item, 0, master)]
    for place in (CENTRAL, *depts[:4]):
        minimum = Decimal(40 if place is CENTRAL else 6)
        limits = ThresholdSetPayload(location=place, minimum=minimum, maximum=minimum * 3)
        out.append(_event(InventoryThresholdSet, f"thr-{i}-{place.department.code}", item, 0, limits))
    return out


def _lot_events(i: int, lot_no: int, depts: list[LocationRef], rng: random.Random) -> list[EventBase]:
    item, gtin, high, lot = f"ITM-{i:06d}", gtin_for(i), i % 10 == 0, f"24{lot_no}{i:05d}"
    serials = [f"SN{i:05d}{lot_no}{u:03d}" for u in range(UNITS_PER_LOT)] if high else []
    quantity = len(serials) if high else 20 * len(depts) + 100
    receipt = ReceivedPayload(
        location=CENTRAL,
        quantity=Decimal(quantity),
        lot=lot,
        expiry=date(2025, 1 + i % 12, 1),
        serials=serials,
        supplier="华东医疗",
        po_number=f"PO{i:05d}{lot_no}",
        barcode=Barcode(raw=f"(01){gtin}(10){lot}", symbology="gs1", gtin=gtin, lot=lot),
    )
    out = [_event(InventoryReceived, f"rec-{i}-{lot_no}", item, 24 + lot_no, receipt)]
    for d, place in enumerate(depts):
        moved = serials[d : d + 1]
        transfer = TransferredPayload(
            from_location=CENTRAL,
            to_location=place,
            quantity=Decimal(len(moved) or 20),
            lot=lot,
            serials=moved,
            document_no=f"PS{i:05d}{lot_no}{d:02d}",
        )
        out.append(_event(InventoryTransferred, f"tr-{i}-{lot_no}-{d}", item, 48 + d, transfer))
        if d % 5 == 0:
            scan = ConsumedPayload(
                location=place,
                quantity=Decimal(1 if high else rng.randint(5, 18)),
                lot=lot,
                serial=moved[0] if moved else None,
                patient_token=f"PT-{rng.randrange(10**8)}" if high else None,
                procedure_code="36.06" if high else None,
            )
            out.append(
                _event(InventoryConsumed, f"con-{i}-{lot_no}-{d}", item, 200 + rng.random() * 100, scan)
            )
    left = Decimal(quantity - len(depts) * (1 if high else 20))
    count = AdjustedPayload(location=CENTRAL, lot=lot, counted_quantity=left)
    out.append(_event(InventoryAdjusted, f"cnt-{i}-{lot_no}", item, 400, count))
    if i % 50 == 0 and lot_no == 0:
        gone = DisposedPayload(
            location=CENTRAL, quantity=Decimal(1), lot=lot, serials=serials[-1:], reason="expired"
        )
        out.append(_event(InventoryDisposed, f"dis-{i}", item, 420, gone))
    return out


def to_records(events: list[EventBase]) -> list[BusRecord]:
    """Bus records in publish order, keyed by item over PARTITIONS partitions."""
    next_offset = [0] * PARTITIONS
    out = []
    for event in events:
        p = partition_for_key(event.subject, PARTITIONS)
        out.append(BusRecord(TOPIC, p, next_offset[p], event.subject, dump_event(event), (), 0))
        next_offset[p] += 1
    return out


def apply_all(
    url: str, records: list[BusRecord], *, gc_threshold: tuple[int, int, int] | None = None
) -> float:
    """Events per second applying `records` in batches at `url`."""
    engine = make_engine(url)
    saved = gc.get_threshold()
    try:
        projection = Inventory()
        ensure_tables(engine, projection)
        if gc_threshold is not None:
            gc.set_threshold(*gc_threshold)
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            apply_batch(engine, projection, records[start : start + BATCH])
        elapsed = time.perf_counter() - started
    finally:
        gc.set_threshold(*saved)
        engine.dispose()
    return len(records) / elapsed


def _on_pg(server: str, records: list[BusRecord], threshold: tuple[int, int, int] | None) -> float:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        return apply_all(make_url(server).set(database=name).render_as_string(hide_password=False), records,
                         gc_threshold=threshold)  # fmt: skip
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def _p99(client: httpx.AsyncClient, paths: list[tuple[str, dict[str, object]]]) -> tuple[float, float]:
    for path, params in paths[:20]:  # warm up: plans, caches, pydantic
        (await client.get(path, params=params)).raise_for_status()
    times = []
    for path, params in paths:
        started = time.perf_counter()
        response = await client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    return times[int(len(times) * 0.99) - 1], statistics.median(times)


async def latency(report) -> None:
    items = 2_000
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'readmodels.db'}"
        apply_all(url, to_records(quarter(items)), gc_threshold=TUNED_GC)
        engine = make_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(stock)).scalar_one()
        # Trace and recall are audited reads: count them here; `hub serve` publishes each one.
        recorded: list[object] = []

        async def access_log(event: object) -> None:
            recorded.append(event)

        def stock_request() -> tuple[str, dict[str, object]]:
            return "/inventory/stock", rng.choice([
                {},
                {"item": f"DZ{rng.randrange(items):05d}"},
                {"department": f"{rng.randrange(1, 25):04d}", "offset": rng.randrange(0, 3000)},
                {"department": "中心库房", "high_value": "true"},
                {"below_minimum": "true"},
                {"lot": f"241{rng.randrange(items):05d}"},
                {"offset": rng.randrange(0, 90_000)},
                {"include_empty": "true", "offset": rng.randrange(0, 90_000)},
            ])  # fmt: skip

        def trace_request() -> tuple[str, dict[str, object]]:
            i = rng.randrange(0, items, 10)  # a high-value item
            serial = f"SN{i:05d}{rng.randrange(2)}{rng.randrange(24):03d}"
            code = rng.choice([serial, f"(01){gtin_for(i)}(10)24{serial[7]}{i:05d}(21){serial}"])
            if rng.random() < 0.2:
                j = rng.randrange(items)
                code = f"(01){gtin_for(j)}(10)240{j:05d}"  # a lot code of an ordinary item
            return f"/inventory/trace/{code}", {}

        stock_requests = [stock_request() for _ in range(REQUESTS)]
        trace_requests = [trace_request() for _ in range(REQUESTS)]
        async with api_client(url, base_url="http://bench", access_log=access_log) as (_, client):
            p99, median = await _p99(client, stock_requests)
            report.add(
                "inventory", f"GET /inventory/stock p99, {rows:,} stock rows, SQLite", p99, "ms", aim="< 50",
                note=f"median {median:.1f} ms; filters and deep pages mixed, 50 per page, in-process",
            )  # fmt: skip
            p99, median = await _p99(client, trace_requests)
            report.add(
                "inventory", f"GET /inventory/trace p99, {rows:,} stock rows, SQLite", p99, "ms", aim="< 20",
                note=f"median {median:.1f} ms; serials, GS1 HRI unit codes, lot codes",
            )  # fmt: skip
        engine.dispose()


async def run(report) -> None:
    records = to_records(quarter(400))
    note = f"{len(records):,} events (SPD quarter mix), batches of {BATCH:,}"
    for label, threshold in (("default GC", None), ("gen0 GC threshold 10,000", TUNED_GC)):
        with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
            rate = apply_all(f"sqlite:///{Path(tmp) / 'readmodels.db'}", records, gc_threshold=threshold)
        report.add(
            "inventory", f"inventory apply, SQLite, {label}", rate, "events/s", aim=">= 5,000", note=note
        )
    server = _pg_server()
    if server is None:
        report.skip("inventory apply on PostgreSQL", "no server at HUB_TEST_PG_URL or 127.0.0.1:5432")
    else:
        for label, threshold in (("default GC", None), ("gen0 GC threshold 10,000", TUNED_GC)):
            rate = _on_pg(server, records, threshold)
            report.add(
                "inventory",
                f"inventory apply, PostgreSQL, {label}",
                rate,
                "events/s",
                aim=">= 5,000",
                note=note,
            )
    await latency(report)
