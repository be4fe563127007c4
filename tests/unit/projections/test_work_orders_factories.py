"""Builders for work-order events, a feed that applies them, and a random-stream strategy.

Used by the work-order, KPI and API tests; holds no tests itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, create_engine, select, text
from sqlalchemy.engine import make_url

from hub.ports import BusRecord
from projections.runtime.base import Projection
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.derived import OUTBOX_METADATA, projection_outbox
from projections.runtime.tracking import TRACKING_METADATA, apply_batch, ensure_tables
from projections.work_orders.projection import WorkOrders
from projections.work_orders.tables import orders
from schemas._base import DeptRef, Identifier, Money
from schemas.assets import AssetUsed, UsedPayload
from schemas.catalogue import dump_event, parse_event
from schemas.envelope import EventBase, Source
from schemas.work_orders import (
    ApprovedPayload,
    AssignedPayload,
    CancelledPayload,
    ClosedPayload,
    CompletedPayload,
    OnHoldPayload,
    Part,
    Priority,
    RejectedPayload,
    RequestCorrectedPayload,
    RequestedPayload,
    StartedPayload,
    WorkOrderApproved,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderCompleted,
    WorkOrderOnHold,
    WorkOrderRejected,
    WorkOrderRequestCorrected,
    WorkOrderRequested,
    WorkOrderStarted,
)
from tests.unit.projections.factories import digest, eid, linked, registered, relocated
from topics.catalogue import topic_for_event_type

T0 = datetime(2024, 4, 1, 8, 0, tzinfo=UTC)
ICU = DeptRef(code="ICU", name="重症医学科")
ER = DeptRef(code="ER", name="急诊科")
CARD = "ZC-2019-00005"


def _envelope(label: str, subject: str, at: datetime, system: str = "oa") -> dict[str, Any]:
    return {
        "event_id": eid(label),
        "occurred_at": at,
        "recorded_at": at + timedelta(minutes=1),
        "source": Source(system=system, site="main", message_id=f"msg-{label}", adapter_version="test-1"),
        "subject": subject,
    }


def requested(
    label: str,
    wo: str,
    *,
    at: datetime = T0,
    priority: str = "normal",
    asset: tuple[str, str] = ("hrp.card", CARD),
    department: DeptRef = ICU,
) -> WorkOrderRequested:
    return WorkOrderRequested(
        **_envelope(label, wo, at),
        payload=RequestedPayload(
            asset=Identifier(scheme=asset[0], value=asset[1]),
            reporting_department=department,
            symptom="开机自检失败",
            priority=Priority(priority),
            requested_by="黄桂",
        ),
    )


def request_corrected(
    label: str, original: WorkOrderRequested, *, department: DeptRef
) -> WorkOrderRequestCorrected:
    """The correction of `original` to `department` (what a retry after a mapping fix publishes)."""
    corrected = original.payload.model_copy(update={"reporting_department": department})
    envelope = _envelope(label, original.subject, original.occurred_at)
    envelope["recorded_at"] = original.recorded_at + timedelta(days=1)
    return WorkOrderRequestCorrected(
        **envelope,
        causation_id=str(original.event_id),
        payload=RequestCorrectedPayload(
            corrects=original.event_id, request=corrected, previous=original.payload
        ),
    )


def approved(
    label: str, wo: str, *, at: datetime, amount: str | None = None, level: int = 1, currency: str = "CNY"
) -> WorkOrderApproved:
    money = Money(amount=Decimal(amount), currency=currency) if amount is not None else None
    return WorkOrderApproved(
        **_envelope(label, wo, at), payload=ApprovedPayload(amount=money, approver="吴勇", level=level)
    )


def rejected(label: str, wo: str, *, at: datetime, level: int = 2) -> WorkOrderRejected:
    return WorkOrderRejected(
        **_envelope(label, wo, at), payload=RejectedPayload(approver="黄伟军", level=level, reason="费用偏高")
    )


def assigned(label: str, wo: str, *, at: datetime, engineer: str = "周建国") -> WorkOrderAssigned:
    return WorkOrderAssigned(
        **_envelope(label, wo, at), payload=AssignedPayload(engineer=engineer, team="生命支持组")
    )


def started(label: str, wo: str, *, at: datetime, engineer: str | None = None) -> WorkOrderStarted:
    return WorkOrderStarted(**_envelope(label, wo, at), payload=StartedPayload(engineer=engineer))


def on_hold(label: str, wo: str, *, at: datetime) -> WorkOrderOnHold:
    return WorkOrderOnHold(**_envelope(label, wo, at), payload=OnHoldPayload(reason="等待配件"))


def completed(
    label: str,
    wo: str,
    *,
    at: datetime,
    cost: str | None = None,
    parts: Sequence[tuple[str, str | None]] = (),
    downtime: int | None = None,
    currency: str = "CNY",
) -> WorkOrderCompleted:
    return WorkOrderCompleted(
        **_envelope(label, wo, at),
        payload=CompletedPayload(
            resolution="更换故障部件后测试正常",
            parts=[
                Part(
                    name=name,
                    quantity=Decimal(1),
                    cost=Money(amount=Decimal(price)) if price is not None else None,
                )
                for name, price in parts
            ],
            labour_hours=Decimal("1.5"),
            cost=Money(amount=Decimal(cost), currency=currency) if cost is not None else None,
            downtime_minutes=downtime,
        ),
    )


def closed(label: str, wo: str, *, at: datetime) -> WorkOrderClosed:
    return WorkOrderClosed(**_envelope(label, wo, at), payload=ClosedPayload(closed_by="黄桂"))


def cancelled(label: str, wo: str, *, at: datetime) -> WorkOrderCancelled:
    return WorkOrderCancelled(**_envelope(label, wo, at), payload=CancelledPayload(reason="撤销"))


def used(label: str, asset_id: str, *, start: datetime, end: datetime | None) -> AssetUsed:
    return AssetUsed(
        **_envelope(label, asset_id, start, system="his"),
        payload=UsedPayload(started_at=start, ended_at=end),
    )


def to_records(events: Sequence[EventBase], *, start: int = 0) -> list[BusRecord]:
    """Bus records on each event's own canonical topic, one partition, consecutive offsets."""
    return [
        BusRecord(
            topic=topic_for_event_type(e.type).name,
            partition=0,
            offset=start + i,
            key=e.subject,
            value=dump_event(e),
            headers=(),
            timestamp_ms=0,
        )
        for i, e in enumerate(events)
    ]


class Feed:
    """Applies events to a work-order projection, one batch per call, at increasing offsets."""

    def __init__(self, engine: Engine, projection: WorkOrders | None = None) -> None:
        self.engine = engine
        self.projection = projection or WorkOrders()
        self.offset = 0

    def __call__(self, *events: EventBase) -> None:
        """Apply `events` as one batch."""
        apply_batch(self.engine, self.projection, to_records(events, start=self.offset))
        self.offset += len(events)

    def tick(self, now: datetime) -> list[EventBase]:
        """Run the projection's tick in its own transaction, as the runner does."""
        with write_transaction(self.engine) as conn:
            return list(self.projection.tick(conn, now))

    def order(self, wo: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(orders).where(orders.c.workorder_id == wo)).mappings().first()
        assert row is not None, wo
        return dict(row)


def staged(engine: Engine) -> list[EventBase]:
    """Every derived event staged in the outbox, by event id."""
    with engine.connect() as conn:
        values = conn.execute(select(projection_outbox.c.value).order_by(projection_outbox.c.event_id))
        return [parse_event(bytes(v)) for (v,) in values]


def full_digest(engine: Engine, *metadatas: MetaData, tracking: bool = True) -> str:
    """Digest of the given tables, tracking (unless not), and the staged derived events (not their
    staging time)."""
    t = projection_outbox.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.projection, t.event_id, t.topic, t.key, t.value).order_by(t.event_id))
        outbox = repr([tuple(r) for r in rows])
    return digest(engine, *metadatas, *([TRACKING_METADATA] if tracking else [])) + outbox


DB_PARAMS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A read-model database URL for one test module: a SQLite file, or a PostgreSQL database.

    Creating a PostgreSQL database per test costs about a second; these tests share one per
    module and empty the tables between tests (`reset`) instead.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('readmodels') / 'readmodels.db'}"
        return
    server = str(request.getfixturevalue("pg_server_url"))
    name = f"hubtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset(engine: Engine, *metadatas: MetaData) -> None:
    """Empty the given tables, tracking and the outbox."""
    with engine.begin() as conn:
        for md in (*metadatas, TRACKING_METADATA, OUTBOX_METADATA):
            for table in reversed(md.sorted_tables):
                conn.execute(table.delete())


def projection_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, projection: Projection
) -> Iterator[Engine]:
    """Body of a module-scoped engine fixture (params=DB_PARAMS) with `projection`'s tables."""
    for url in module_database(request, tmp_path_factory):
        eng = make_engine(url)
        ensure_tables(eng, projection)
        yield eng
        eng.dispose()


WOS = ("WO-1", "WO-2", "WO-3")


def _requested(draw: st.DrawFn, label: str, wo: str, at: datetime) -> EventBase:
    priority = draw(st.sampled_from([p.value for p in Priority]))
    asset = draw(st.sampled_from([("hrp.card", "C1"), ("oa.no", "N1")]))
    return requested(label, wo, at=at, priority=priority, asset=asset)


def _approved(draw: st.DrawFn, label: str, wo: str, at: datetime) -> EventBase:
    amount = draw(st.sampled_from([None, "9999.99", "10000", "52000.00"]))
    return approved(label, wo, at=at, amount=amount, level=draw(st.integers(1, 3)))


def _assigned(draw: st.DrawFn, label: str, wo: str, at: datetime) -> EventBase:
    return assigned(label, wo, at=at, engineer=draw(st.sampled_from(["甲", "乙"])))


def _completed(draw: st.DrawFn, label: str, wo: str, at: datetime) -> EventBase:
    cost = draw(st.sampled_from([None, "200.0", "19100.00"]))
    downtime = draw(st.sampled_from([None, 90]))
    return completed(label, wo, at=at, cost=cost, parts=[("主板", "18500.00")], downtime=downtime)


_BUILDERS: dict[str, Callable[[st.DrawFn, str, str, datetime], EventBase]] = {
    "requested": _requested,
    "approved": _approved,
    "rejected": lambda _d, label, wo, at: rejected(label, wo, at=at),
    "assigned": _assigned,
    "started": lambda _d, label, wo, at: started(label, wo, at=at),
    "on_hold": lambda _d, label, wo, at: on_hold(label, wo, at=at),
    "completed": _completed,
    "closed": lambda _d, label, wo, at: closed(label, wo, at=at),
    "cancelled": lambda _d, label, wo, at: cancelled(label, wo, at=at),
    "asset": lambda draw, label, _wo, at: _asset_event(draw, label, at),
}


@st.composite
def work_order_streams(draw: st.DrawFn) -> list[EventBase]:
    """Random streams over three work orders and two assets: any lifecycle order, late and repeated
    events, ties in time, holds, approvals, asset registrations, links and usage."""
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 30))):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # the same event again, as after a translator crash
            continue
        wo = draw(st.sampled_from(WOS))
        at = T0 + timedelta(minutes=30 * draw(st.integers(0, 400)))
        build = _BUILDERS[draw(st.sampled_from(sorted(_BUILDERS)))]
        out.append(build(draw, f"s{i}", wo, at))
    return out


def _asset_event(draw: st.DrawFn, label: str, at: datetime) -> EventBase:
    choice = draw(st.integers(0, 3))
    asset = draw(st.sampled_from(["AST-1", "AST-2"]))
    if choice == 0:
        return registered(label, asset, at=at, card=draw(st.sampled_from(["C1", "C2"])))
    if choice == 1:
        return linked(label, asset, "oa.no", "N1", at=at)
    if choice == 2:
        return relocated(label, asset, code="ER", name="急诊科", at=at)
    return used(label, asset, start=at, end=at + timedelta(minutes=draw(st.integers(0, 120))))
