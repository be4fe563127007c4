"""Work orders, compliance and KPIs: projection apply rates, and GET /workorders and /kpis latency.

Apply: synthetic events pre-serialised as bus records over 3 partitions, applied through
`apply_batch` in batches of 1,000 (decode, id and offset bookkeeping, the fold, batched upserts,
one transaction per batch), on SQLite (temp file, synchronous=FULL) and PostgreSQL
(HUB_TEST_PG_URL or the local server; a fresh database, dropped afterwards).
- work_orders: 2,000 asset registrations, then 10,000 work orders through their lifecycle
  (requested, assigned, started, completed, closed; every fifth approved; every tenth still
  open), in request order.
- compliance: 10,000 registrations (ventilators, monitors, beds) with, per device, a
  calibration, a PM inspection and every third a service contract.

Latency: 50,000 work orders on 5,000 assets (SQLite), queried in-process through build_hub + build_api
and httpx (FastAPI, validation and JSON included, no network): 300 requests per endpoint
after a warm-up, over a mix of filters for /workorders and the three groupings for /kpis.
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

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.pg import pg_server as _pg_server
from bench.wiring import api_client
from hub.bus.partitioner import partition_for_key
from hub.ports import BusRecord
from projections.compliance.projection import Compliance
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from projections.work_orders.projection import WorkOrders
from schemas._base import DeptRef, Identifier, Money
from schemas.assets import (
    AssetCalibrated,
    AssetContractRegistered,
    AssetDetails,
    AssetInspected,
    AssetRegistered,
    AssetRegisteredPayload,
    CalibratedPayload,
    Category,
    ContractRegisteredPayload,
    InspectedPayload,
)
from schemas.catalogue import dump_event
from schemas.envelope import Source
from schemas.ids import asset_id_for
from schemas.work_orders import (
    ApprovedPayload,
    AssignedPayload,
    ClosedPayload,
    CompletedPayload,
    Part,
    Priority,
    RequestedPayload,
    StartedPayload,
    WorkOrderApproved,
    WorkOrderAssigned,
    WorkOrderClosed,
    WorkOrderCompleted,
    WorkOrderRequested,
    WorkOrderStarted,
)
from topics.catalogue import topic_for_event_type

if TYPE_CHECKING:
    import httpx


BATCH = 1_000
PARTITIONS = 3
T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEPTS = [DeptRef(code=f"D{i:02d}", name=f"科室{i:02d}") for i in range(30)]
CATEGORIES = [
    Category(code="6854", name="手术室、急救室、诊疗室设备及器具"),
    Category(code="6821", name="医用电子仪器设备"),
    Category(code="6856", name="病房护理设备及器具"),
    Category(code="6845", name="体外循环及血液处理设备"),
]
PRIORITIES = [Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.NORMAL, Priority.LOW]
REQUESTS = 300
TUNED_GC = (10_000, 20, 20)


def _source(system: str) -> Source:
    return Source(system=system, site="bench", message_id="bench", adapter_version="bench")


def _card(i: int) -> Identifier:
    return Identifier(scheme="hrp.card", value=f"ZC-{i:08d}")


def _registrations(count: int) -> list:
    src = _source("hrp")
    return [
        AssetRegistered(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"reg-{i}"),
            occurred_at=T0,
            recorded_at=T0,
            source=src,
            subject=asset_id_for(_card(i)),
            payload=AssetRegisteredPayload(
                identifiers=[_card(i)],
                details=AssetDetails(
                    name="呼吸机",
                    category=CATEGORIES[i % len(CATEGORIES)],
                    department=DEPTS[i % len(DEPTS)],
                    acquired_on=date(2019, 1, 1) + timedelta(days=i % 700),
                ),
            ),
        )
        for i in range(count)
    ]


def _lifecycle(n: int, assets: int, rng: random.Random, span_days: int) -> list:
    """The events of work order `n`, on a random asset, requested within `span_days` of T0."""
    src, wo = _source("oa"), f"WO-{n:08d}"
    at = T0 + timedelta(minutes=rng.randrange(span_days * 24 * 60))

    def ev(cls: type, step: str, when: datetime, payload: object) -> object:
        eid = uuid.uuid5(uuid.NAMESPACE_URL, f"{wo}-{step}")
        return cls(event_id=eid, occurred_at=when, recorded_at=when, source=src, subject=wo, payload=payload)

    dept = DEPTS[rng.randrange(len(DEPTS))]
    out = [
        ev(
            WorkOrderRequested,
            "req",
            at,
            RequestedPayload(
                asset=_card(rng.randrange(assets)),
                reporting_department=dept,
                symptom="开机自检失败",
                priority=PRIORITIES[n % len(PRIORITIES)],
            ),
        )
    ]
    if n % 10 == 0:
        return out  # still open
    cost = Decimal(rng.choice([200, 850, 2400, 12800, 19100]))
    if n % 5 == 0:
        out.append(
            ev(WorkOrderApproved, "apr", at + timedelta(hours=1), ApprovedPayload(amount=Money(amount=cost)))
        )
    out += [
        ev(
            WorkOrderAssigned,
            "asg",
            at + timedelta(hours=rng.randrange(1, 12)),
            AssignedPayload(engineer="周建国"),
        ),
        ev(WorkOrderStarted, "sta", at + timedelta(hours=13), StartedPayload()),
        ev(
            WorkOrderCompleted,
            "com",
            at + timedelta(hours=rng.randrange(14, 120)),
            CompletedPayload(
                cost=Money(amount=cost),
                parts=[Part(name="主控板", quantity=Decimal(1), cost=Money(amount=cost / 2))],
                downtime_minutes=rng.randrange(30, 3000),
            ),
        ),
        ev(WorkOrderClosed, "clo", at + timedelta(hours=130), ClosedPayload()),
    ]
    return out


def work_order_events(work_orders: int, assets: int, span_days: int) -> list:
    rng = random.Random(20240101)
    events = _registrations(assets)
    for n in range(work_orders):
        events += _lifecycle(n, assets, rng, span_days)
    return events


def compliance_events(assets: int) -> list:
    events = _registrations(assets)
    src, at = _source("hrp"), datetime(2024, 1, 1, tzinfo=UTC)

    def envelope(label: str, subject: str) -> dict:
        eid = uuid.uuid5(uuid.NAMESPACE_URL, label)
        return {"event_id": eid, "occurred_at": at, "recorded_at": at, "source": src, "subject": subject}

    for i in range(assets):
        subject = asset_id_for(_card(i))
        day = date(2023, 1, 1) + timedelta(days=i % 365)
        certificate = CalibratedPayload(
            certificate_no=f"JD-{i}", calibrated_on=day, valid_until=day + timedelta(days=364)
        )
        events.append(AssetCalibrated(**envelope(f"cal-{i}", subject), payload=certificate))
        pm = InspectedPayload(kind="preventive_maintenance", inspected_on=day)
        events.append(AssetInspected(**envelope(f"pm-{i}", subject), payload=pm))
        if i % 3 == 0:
            terms = ContractRegisteredPayload(
                contract_no=f"HT-{i // 30}", kind="service", ends_on=date(2024, 12, 31)
            )
            events.append(AssetContractRegistered(**envelope(f"ht-{i}", subject), payload=terms))
    return events


def to_records(events: list) -> list[BusRecord]:
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for event in events:
        topic = topic_for_event_type(event.type).name
        p = partition_for_key(event.subject, PARTITIONS)
        offset = offsets.get((topic, p), 0)
        offsets[(topic, p)] = offset + 1
        out.append(BusRecord(topic, p, offset, event.subject, dump_event(event), (), 0))
    return out


def apply_all(url: str, projection: object, records: list[BusRecord]) -> float:
    """Events per second applying `records` in batches (GC threshold raised, as the hub runs)."""
    engine = make_engine(url)
    saved = gc.get_threshold()
    try:
        ensure_tables(engine, projection)  # type: ignore[arg-type]
        gc.set_threshold(*TUNED_GC)
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            apply_batch(engine, projection, records[start : start + BATCH])  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
    finally:
        gc.set_threshold(*saved)
        engine.dispose()
    return len(records) / elapsed


def _with_pg_database(server: str, work) -> float:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        return work(make_url(server).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


async def _p99(client: httpx.AsyncClient, requests: list[tuple[str, dict]]) -> tuple[float, float]:
    for path, params in requests[:20]:  # warm up: plans, caches, pydantic
        (await client.get(path, params=params)).raise_for_status()
    times = []
    for path, params in requests:
        started = time.perf_counter()
        response = await client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    return times[int(len(times) * 0.99) - 1], statistics.median(times)


async def latency(report: object) -> None:
    work_orders, assets, span = 50_000, 5_000, 365
    with tempfile.TemporaryDirectory(prefix="bench-workorders-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'readmodels.db'}"
        apply_all(url, WorkOrders(), to_records(work_order_events(work_orders, assets, span)))
        rng = random.Random(7)
        list_requests = [
            (
                "/workorders",
                rng.choice(
                    [
                        {},
                        {"status": "open"},
                        {"department": DEPTS[rng.randrange(len(DEPTS))].code},
                        {"sla_breached": "true", "offset": rng.randrange(0, 2000)},
                        {"asset": f"ZC-{rng.randrange(assets):08d}"},
                        {"priority": "urgent", "approval_state": "approved"},
                        {"offset": rng.randrange(0, 40_000)},
                    ]
                ),
            )
            for _ in range(REQUESTS)
        ]
        kpi_requests = [
            ("/kpis", {"group_by": rng.choice(["category", "department", "device"])}) for _ in range(REQUESTS)
        ]
        clock = _Clock(T0 + timedelta(days=span))
        async with api_client(url, base_url="http://bench", clock=clock) as (_, client):
            p99, median = await _p99(client, list_requests)
            report.add(  # type: ignore[attr-defined]
                "workorders", "GET /workorders p99, 50,000 work orders, SQLite", p99, "ms", aim="< 50",
                note=f"median {median:.1f} ms; filters mixed, 50 per page, in-process",
            )  # fmt: skip
            p99, median = await _p99(client, kpi_requests)
            report.add(  # type: ignore[attr-defined]
                "workorders", "GET /kpis p99, 50,000 work orders, SQLite", p99, "ms", aim="< 500",
                note=f"median {median:.1f} ms; category/department/device over 365 days, 5,000 assets",
            )  # fmt: skip


def _note(records: list[BusRecord]) -> str:
    return f"{len(records):,} events, batches of {BATCH:,}, gen0 GC 10,000"


async def run(report) -> None:
    wo_records = to_records(work_order_events(10_000, 2_000, 180))
    co_records = to_records(compliance_events(10_000))
    cases = (
        ("work_orders", WorkOrders, wo_records, ">= 5,000"),
        ("compliance", Compliance, co_records, ">= 5,000"),
    )
    for name, factory, records, aim in cases:
        with tempfile.TemporaryDirectory(prefix="bench-workorders-") as tmp:
            rate = apply_all(f"sqlite:///{Path(tmp) / 'readmodels.db'}", factory(), records)
        report.add("workorders", f"{name} apply, SQLite", rate, "events/s", aim=aim, note=_note(records))
    server = _pg_server()
    if server is None:
        report.skip(
            "work_orders / compliance apply on PostgreSQL", "no server at HUB_TEST_PG_URL or 127.0.0.1:5432"
        )
    else:
        for name, factory, records, aim in cases:
            rate = _with_pg_database(server, lambda url, f=factory, r=records: apply_all(url, f(), r))
            report.add(
                "workorders",
                f"{name} apply, PostgreSQL",
                rate,
                "events/s",
                aim=aim,
                note=_note(records),
            )
    await latency(report)
