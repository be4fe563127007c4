"""Asset registry with identity resolution: apply throughput, and API latency at 100,000 assets.

The stream (`fleet_records(n)`) is what a hospital group's systems send about n devices: HRP
ledger registrations (card, manufacturer+serial, UDI for half), FHIR registrations of a quarter
of them that meet the HRP record through the UDI (automatic match, merge when FHIR came first),
HIS usage keyed by an unlinked HIS code for a tenth, then a mapping link that merges those
provisional records, status changes, OA loans and calibration certificates. The identifier
crosswalk, merges, history and availability tables are all maintained; pre-serialised bus
records over 6 partitions, applied in batches of 1,000 through `apply_batch` as the runner does,
with the gen0 GC threshold at 10,000 (see bench_projection).

The ceiling, measured in the same run on the same records and database: a plain batched upsert
(`json.loads` of each record, `INSERT ... ON CONFLICT (id) DO UPDATE` of its id, type, time and
body into one table, 1,000 a transaction); the rows report apply / ceiling. Each is run
APPLY_REPEATS times on a fresh database: median and range.

Latency: the SQLite read model built from 100,000 devices (about 3% ventilators over 40
departments), served by `build_api` through an in-process httpx ASGI client (no sockets: the
figures are FastAPI + SQLAlchemy + SQLite, one request at a time after a warm-up).
`GET /availability?type=呼吸机` and `GET /assets/{id}` (ids drawn at random; one in ten a merged
record's id, which resolves to its golden record).
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from bench.pg import drop_pg_database as _drop_pg_database
from bench.pg import fresh_pg_database as _fresh_pg_database
from bench.pg import pg_server as _pg_server
from bench.report import load_note
from bench.wiring import api_client
from hub.bus.partitioner import partition_for_key
from hub.ports import BusRecord
from projections.assets.registry import AssetRegistry, count_assets
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.tracking import apply_batch, ensure_tables
from schemas._base import DeptRef, Identifier, Money
from schemas.assets import (
    AssetCalibrated,
    AssetDetails,
    AssetIdentifierLinked,
    AssetLoaned,
    AssetRegistered,
    AssetRegisteredPayload,
    AssetStatus,
    AssetStatusChanged,
    AssetUsed,
    CalibratedPayload,
    Category,
    IdentifierLinkedPayload,
    LoanedPayload,
    StatusChangedPayload,
    UsedPayload,
)
from schemas.catalogue import dump_event
from schemas.envelope import EventBase, Source
from schemas.ids import asset_id_for

TOPIC = "canonical.asset.v1"
PARTITIONS = 6
BATCH = 1_000
TUNED_GC = (10_000, 20, 20)
APPLY_DEVICES = 20_000
LATENCY_DEVICES = 100_000
REQUESTS = 400
APPLY_REPEATS = 3
DEPTS = [DeptRef(code=f"D{i:02d}", name=f"科室{i:02d}") for i in range(40)]
KINDS = [
    ("呼吸机", ["SV300", "SV600", "Savina 300", "C3"], 3),
    ("监护仪", ["iMEC10", "BeneVision N12", "IntelliVue MX450"], 20),
    ("输液泵", ["Infusomat Space", "BeneFusion VP5"], 25),
    ("注射泵", ["Agilia SP", "BeneFusion SP5"], 20),
    ("除颤仪", ["R Series", "BeneHeart D3"], 4),
    ("病床", ["HB-1", "HB-2"], 28),
]  # (name, models, share in %)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _kind(rng: random.Random) -> tuple[str, str]:
    name, models, _ = rng.choices(KINDS, weights=[k[2] for k in KINDS])[0]
    return name, rng.choice(models)


def fleet_events(n: int, seed: int = 7) -> list[EventBase]:
    """The events a hospital group's systems send about `n` devices (see the module docstring)."""
    rng = random.Random(seed)
    source = {
        s: Source(system=s, site="bench", message_id=f"bench-{s}", adapter_version="bench")
        for s in ("hrp", "fhir", "his", "oa")
    }
    early, ledger, later = [], [], []

    def env(tag: str, i: int, system: str, subject: str, at: datetime) -> dict[str, object]:
        return {
            "event_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{i}"),
            "occurred_at": at,
            "recorded_at": at,
            "source": source[system],
            "subject": subject,
        }

    for i in range(n):
        card = Identifier(scheme="hrp.card", value=f"ZC-{i:08d}")
        subject = asset_id_for(card)
        name, model = _kind(rng)
        udi = f"(01)0694{i:010d}(21)SN{i:08d}" if i % 2 == 0 else None
        his = Identifier(scheme="his.code", value=f"EQ-{i:08d}")
        at = T0 + timedelta(minutes=i % 10_000)
        if i % 10 == 0:  # HIS reports usage before anyone linked its code
            early.append(
                AssetUsed(
                    **env("use", i, "his", asset_id_for(his), at),
                    payload=UsedPayload(department=DEPTS[i % 40]),
                )
            )
        if i % 4 == 0:  # FHIR knows the device by its UDI (every 4th has one: i even)
            fid = Identifier(scheme="udi", value=udi or "")
            fhir = AssetRegistered(
                **env("fhir", i, "fhir", asset_id_for(fid), at),
                payload=AssetRegisteredPayload(
                    identifiers=[fid, Identifier(scheme="fhir.device", value=f"dev-{i}")],
                    details=AssetDetails(name=name, udi=udi),
                ),
            )
            (early if i % 8 == 0 else later).append(fhir)
        idents = [card, Identifier(scheme="serial", value=f"迈瑞|SN{i:08d}")]
        if udi:
            idents.append(Identifier(scheme="udi", value=udi))
        ledger.append(
            AssetRegistered(
                **env("reg", i, "hrp", subject, at),
                payload=AssetRegisteredPayload(
                    identifiers=idents,
                    details=AssetDetails(
                        name=name,
                        model=model,
                        manufacturer="迈瑞",
                        serial_number=f"SN{i:08d}",
                        udi=udi,
                        category=Category(code="6854"),
                        department=DEPTS[i % 40],
                        original_value=Money(amount=Decimal("38500.00")),
                        status=AssetStatus.IN_USE,
                    ),
                ),
            )
        )
        later_at = at + timedelta(days=30)
        if i % 10 == 0:
            later.append(
                AssetIdentifierLinked(
                    **env("link", i, "hrp", subject, later_at),
                    payload=IdentifierLinkedPayload(identifier=his, linked_by="mapping"),
                )
            )
        if i % 7 == 0:
            later.append(
                AssetStatusChanged(
                    **env("st", i, "hrp", subject, later_at),
                    payload=StatusChangedPayload(status=AssetStatus.UNDER_REPAIR),
                )
            )
        if i % 11 == 0:
            later.append(
                AssetLoaned(
                    **env("loan", i, "oa", subject, later_at),
                    payload=LoanedPayload(
                        loan_id=f"JY-{i}",
                        borrower_department=DEPTS[(i + 1) % 40],
                        due_at=later_at + timedelta(days=7),
                    ),
                )
            )
        if i % 3 == 0:
            later.append(
                AssetCalibrated(
                    **env("cal", i, "hrp", subject, later_at),
                    payload=CalibratedPayload(
                        calibrated_on=date(2024, 2, 1), valid_until=date(2025 + i % 3, 1, 31)
                    ),
                )
            )
    return early + ledger + later


def as_records(events: list[EventBase]) -> list[BusRecord]:
    next_offset = [0] * PARTITIONS
    out = []
    for event in events:
        p = partition_for_key(event.subject, PARTITIONS)
        out.append(BusRecord(TOPIC, p, next_offset[p], event.subject, dump_event(event), (), 0))
        next_offset[p] += 1
    return out


def apply_all(url: str, records: list[BusRecord], devices: int) -> float:
    """Apply `records` in batches to the database at `url`; events per second."""
    engine = make_engine(url)
    saved = gc.get_threshold()
    try:
        projection = AssetRegistry()
        ensure_tables(engine, projection)
        gc.set_threshold(*TUNED_GC)
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            apply_batch(engine, projection, records[start : start + BATCH])
        elapsed = time.perf_counter() - started
        with engine.connect() as conn:
            if count_assets(conn) != devices:
                raise RuntimeError("bench run did not produce the expected registry")
    finally:
        gc.set_threshold(*saved)
        engine.dispose()
    return len(records) / elapsed


UPSERT = (
    "INSERT INTO ceiling_assets (id, type, occurred_at, body) VALUES (:id, :type, :occurred_at, :body)"
    " ON CONFLICT (id) DO UPDATE SET type = excluded.type, occurred_at = excluded.occurred_at,"
    " body = excluded.body"
)


def upsert_ceiling(url: str, records: list[BusRecord]) -> float:
    """The plain batched upsert of the same records (see the module docstring); rows per second."""
    engine = make_engine(url)
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                text(
                    "CREATE TABLE ceiling_assets"
                    " (id TEXT PRIMARY KEY, type TEXT, occurred_at TEXT, body TEXT)"
                )
            )
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            rows = []
            for record in records[start : start + BATCH]:
                event = json.loads(record.value)
                rows.append(
                    {"id": record.key, "type": event["type"], "occurred_at": event["occurred_at"],
                     "body": record.value.decode()}
                )  # fmt: skip
            with write_transaction(engine) as conn:
                conn.execute(text(UPSERT), rows)
        return len(records) / (time.perf_counter() - started)
    finally:
        engine.dispose()


def _sqlite_url(tmp: str, name: str) -> str:
    return f"sqlite:///{Path(tmp) / name}"


def _pg_repeats(server: str, work, records: list[BusRecord]) -> list[float]:  # type: ignore[no-untyped-def]
    """`work(url, records)` on a fresh PostgreSQL database each time, dropped afterwards."""
    rates = []
    for _ in range(APPLY_REPEATS):
        url, admin = _fresh_pg_database(server)
        try:
            rates.append(work(url, records))
        finally:
            _drop_pg_database(url, admin)
            admin.dispose()
    return rates


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


async def _latency(url: str, paths: list[str]) -> tuple[float, float]:
    async with api_client(url) as (_, client):
        for path in paths[:50]:  # warm-up: connections, compiled statements, page cache
            (await client.get(path)).raise_for_status()
        samples = []
        for path in paths:
            started = time.perf_counter()
            response = await client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return _percentiles(samples)


async def run(report) -> None:
    events = fleet_events(APPLY_DEVICES)
    records = as_records(events)
    note = f"{len(records):,} events about {APPLY_DEVICES:,} devices, batches of {BATCH:,}, gen0 GC 10,000"
    ceiling_label = "plain batched upsert"
    started_note = load_note()
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        rates = [
            apply_all(_sqlite_url(tmp, f"rm{i}.db"), records, APPLY_DEVICES) for i in range(APPLY_REPEATS)
        ]
        ceiling = [upsert_ceiling(_sqlite_url(tmp, f"up{i}.db"), records) for i in range(APPLY_REPEATS)]
    report.add("registry", "ceiling: plain batched upsert of the same records, SQLite", 0, "rows/s",
               samples=ceiling, note=note)  # fmt: skip
    report.add("registry", "apply with identity resolution, SQLite", 0, "events/s", samples=rates,
               peer=statistics.median(ceiling), peer_label=ceiling_label, aim=">= 40% of ceiling",
               note=f"{note}; {started_note}")  # fmt: skip
    server = _pg_server()
    if server is None:
        report.skip("registry apply on PostgreSQL", "no server at HUB_TEST_PG_URL or 127.0.0.1:5432")
    else:
        started_note = load_note()
        rates = _pg_repeats(server, lambda url, r: apply_all(url, r, APPLY_DEVICES), records)
        ceiling = _pg_repeats(server, upsert_ceiling, records)
        report.add("registry", "ceiling: plain batched upsert of the same records, PostgreSQL", 0, "rows/s",
                   samples=ceiling, note=note)  # fmt: skip
        report.add("registry", "apply with identity resolution, PostgreSQL", 0, "events/s", samples=rates,
                   peer=statistics.median(ceiling), peer_label=ceiling_label, aim=">= 40% of ceiling",
                   note=f"{note}; {started_note}")  # fmt: skip

    big = fleet_events(LATENCY_DEVICES)
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'readmodels.db'}"
        build = apply_all(url, as_records(big), LATENCY_DEVICES)
        report.add(
            "registry",
            f"apply with identity resolution, SQLite, building {LATENCY_DEVICES:,} devices",
            build,
            "events/s",
            note=f"{len(big):,} events",
        )
        ids = [
            asset_id_for(Identifier(scheme="hrp.card", value=f"ZC-{rng.randrange(LATENCY_DEVICES):08d}"))
            for _ in range(REQUESTS)
        ]
        merged = [
            asset_id_for(
                Identifier(scheme="his.code", value=f"EQ-{10 * rng.randrange(LATENCY_DEVICES // 10):08d}")
            )
            for _ in range(REQUESTS // 10)
        ]
        asset_paths = [f"/assets/{i}" for i in ids[: REQUESTS - len(merged)] + merged]
        rng.shuffle(asset_paths)
        where = f"{LATENCY_DEVICES:,} assets, SQLite, in-process ASGI client, {REQUESTS} requests"
        for label, paths in (
            ("GET /availability?type=呼吸机", ["/availability?type=呼吸机"] * REQUESTS),
            ("GET /assets/{id}", asset_paths),
        ):
            p50, p99 = await _latency(url, paths)
            report.add("registry", f"{label} p50", p50, "ms", note=where)
            report.add("registry", f"{label} p99", p99, "ms", aim="< 20", note=where)
