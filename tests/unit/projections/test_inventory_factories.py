"""Builders for inventory events, a feed that applies them, table readers and a random-stream strategy.

Used by the inventory projection, query, property and API tests; holds no tests itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from projections.inventory.projection import Inventory
from projections.inventory.tables import METADATA, join_key, location_key, positions, stock
from projections.runtime.db import make_engine
from projections.runtime.derived import OUTBOX_METADATA, projection_outbox
from projections.runtime.tracking import TRACKING_METADATA, ApplyOutcome, apply_batch, ensure_tables
from schemas._base import DeptRef, LocationRef, Money
from schemas.catalogue import parse_event
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
from tests.unit.projections.factories import digest, eid, record

TOPIC = "canonical.inventory.v1"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
CENTRAL = LocationRef(department=DeptRef(code="9001", name="中心库房"))
OR = LocationRef(department=DeptRef(code="0203", name="手术室"))
ICU = LocationRef(department=DeptRef(code="0301", name="重症医学科"))
WARD = LocationRef(department=DeptRef(name="骨科病区"))  # a department known by name only
STENT, GLOVES, STAPLER = "ITM-stent", "ITM-gloves", "ITM-stapler"
STENT_GTIN = "06947794425876"


def key(place: LocationRef) -> str:
    return location_key(place)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _envelope(label: str, item: str, when: datetime | None, system: str = "spd") -> dict[str, Any]:
    occurred = when or T0
    return {
        "event_id": eid(label),
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(minutes=5),
        "source": Source(system=system, site="main", message_id=f"msg-{label}", adapter_version="test-1"),
        "subject": item,
    }


def defined(label: str, item: str, *, when: datetime | None = None, **fields: Any) -> InventoryItemDefined:
    values: dict[str, Any] = {"item_code": item.removeprefix("ITM-").upper(), "name": item}
    values.update(fields)
    return InventoryItemDefined(**_envelope(label, item, when), payload=ItemDefinedPayload(**values))


def threshold(
    label: str,
    item: str,
    place: LocationRef,
    minimum: int | str,
    maximum: int | str,
    *,
    when: datetime | None = None,
) -> InventoryThresholdSet:
    return InventoryThresholdSet(
        **_envelope(label, item, when),
        payload=ThresholdSetPayload(location=place, minimum=Decimal(minimum), maximum=Decimal(maximum)),
    )


def received(
    label: str,
    item: str,
    quantity: int | str,
    *,
    place: LocationRef = CENTRAL,
    lot: str | None = "L1",
    expiry: date | None = None,
    serials: Sequence[str] = (),
    when: datetime | None = None,
    **fields: Any,
) -> InventoryReceived:
    payload = ReceivedPayload(
        location=place, quantity=Decimal(quantity), lot=lot, expiry=expiry, serials=list(serials), **fields
    )
    return InventoryReceived(**_envelope(label, item, when), payload=payload)


def transferred(
    label: str,
    item: str,
    quantity: int | str,
    *,
    source: LocationRef = CENTRAL,
    target: LocationRef = OR,
    lot: str | None = "L1",
    serials: Sequence[str] = (),
    when: datetime | None = None,
) -> InventoryTransferred:
    payload = TransferredPayload(
        from_location=source,
        to_location=target,
        quantity=Decimal(quantity),
        lot=lot,
        serials=list(serials),
        document_no=f"PS-{label}",
    )
    return InventoryTransferred(**_envelope(label, item, when), payload=payload)


def consumed(
    label: str,
    item: str,
    quantity: int | str = 1,
    *,
    place: LocationRef = OR,
    lot: str | None = "L1",
    when: datetime | None = None,
    system: str = "spd",
    **fields: Any,
) -> InventoryConsumed:
    payload = ConsumedPayload(location=place, quantity=Decimal(quantity), lot=lot, **fields)
    return InventoryConsumed(**_envelope(label, item, when, system), payload=payload)


def counted(
    label: str,
    item: str,
    quantity: int | str,
    *,
    place: LocationRef = CENTRAL,
    lot: str | None = "L1",
    when: datetime | None = None,
) -> InventoryAdjusted:
    payload = AdjustedPayload(location=place, lot=lot, counted_quantity=Decimal(quantity), reason="盘点")
    return InventoryAdjusted(**_envelope(label, item, when), payload=payload)


def disposed(
    label: str,
    item: str,
    quantity: int | str,
    *,
    place: LocationRef = CENTRAL,
    lot: str | None = "L1",
    serials: Sequence[str] = (),
    when: datetime | None = None,
) -> InventoryDisposed:
    payload = DisposedPayload(
        location=place, quantity=Decimal(quantity), lot=lot, serials=list(serials), reason="recalled"
    )
    return InventoryDisposed(**_envelope(label, item, when), payload=payload)


def gs1(
    gtin: str, *, lot: str | None = None, serial: str | None = None, expiry: date | None = None
) -> Barcode:
    """A parsed GS1 label as the adapters deliver it (human-readable raw text)."""
    raw = f"(01){gtin}" + (f"(17){expiry:%y%m%d}" if expiry else "") + (f"(10){lot}" if lot else "")
    raw += f"(21){serial}" if serial else ""
    return Barcode(raw=raw, symbology="gs1", gtin=gtin, lot=lot, serial=serial, expiry=expiry)


def stent_master(label: str = "def-stent") -> InventoryItemDefined:
    return defined(
        label,
        STENT,
        name="药物洗脱冠脉支架",
        spec="3.0*18mm",
        unit="个",
        gtin=STENT_GTIN,
        udi_di=STENT_GTIN,
        high_value=True,
        category="血管介入",
        supplier="华东医疗供应链有限公司",
        price=Money(amount=Decimal("705.00")),
    )


def inventory_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh read-model database with the inventory tables (fixture body)."""
    engine = make_engine(db_url)
    ensure_tables(engine, Inventory())
    yield engine
    engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def shared_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database for a module-scoped fixture (read-only tests share one per backend).

    `request.param` is "sqlite" or "postgres"; PostgreSQL comes from the suite's server fixture.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp('inv') / 'readmodels.db'}"
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


class Feed:
    """Applies events to the inventory projection as the runner would: consecutive offsets, one partition."""

    def __init__(self, engine: Engine, projection: Inventory | None = None) -> None:
        self.engine = engine
        self.projection = projection or Inventory()
        self.offset = 0

    def apply(self, *events: EventBase) -> ApplyOutcome:
        recs = [record(e, self.offset + i, topic=TOPIC) for i, e in enumerate(events)]
        self.offset += len(events)
        return apply_batch(self.engine, self.projection, recs)


def staged(engine: Engine) -> list[EventBase]:
    """Derived events the projection staged, in business-time order."""
    with engine.connect() as conn:
        values = conn.execute(
            select(projection_outbox.c.value).where(projection_outbox.c.projection == "inventory")
        ).scalars()
        events = [parse_event(bytes(v)) for v in values]
    return sorted(events, key=lambda e: (e.occurred_at, e.type, str(e.event_id)))


def level(engine: Engine, item: str, place: LocationRef, lot: str | None = "L1") -> Decimal | None:
    with engine.connect() as conn:
        return conn.execute(
            select(stock.c.on_hand).where(stock.c.stock_key == join_key(item, key(place), lot or ""))
        ).scalar_one_or_none()


def position(engine: Engine, item: str, place: LocationRef) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(select(positions).where(positions.c.position_key == join_key(item, key(place))))
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def tables_digest(engine: Engine) -> str:
    """Hash of the inventory tables and tracking (the outbox's created_at is wall time: compared apart)."""
    return digest(engine, METADATA, TRACKING_METADATA)


def outbox_ids(engine: Engine) -> list[tuple[str, bytes]]:
    t = projection_outbox.c
    with engine.connect() as conn:
        return sorted((str(i), bytes(v)) for i, v in conn.execute(select(t.event_id, t.value)))


RESET = (*METADATA.sorted_tables, *TRACKING_METADATA.sorted_tables, *OUTBOX_METADATA.sorted_tables)

# Few places and lots, so that random events often meet on the same stock row.
PLACES = (CENTRAL, OR, LocationRef(department=DeptRef(code="0203", name="手术室"), location="OR-01"))
LOTS = ("L1", None)


@st.composite
def inventory_streams(draw: st.DrawFn) -> list[EventBase]:
    """A stream over two items: thresholds, movements, counts, definitions; times that tie and go back."""
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 30))):
        if out and draw(st.integers(0, 11)) == 0:
            out.append(draw(st.sampled_from(out)))  # the same event again, as after a translator crash
            continue
        item = draw(st.sampled_from((STENT, GLOVES)))
        when = at(draw(st.integers(0, 6)))
        place = draw(st.sampled_from(PLACES))
        lot = draw(st.sampled_from(LOTS))
        quantity = draw(st.integers(1, 40))
        serial = draw(st.sampled_from(("S1", "S2", None)))
        label = f"e{i}"
        kind = draw(st.integers(0, 7))
        if kind == 0:
            out.append(
                threshold(label, item, place, draw(st.integers(0, 30)), draw(st.integers(0, 60)), when=when)
            )
        elif kind == 1:
            serials = [serial] if serial else []
            out.append(
                received(
                    label, item, len(serials) or quantity, place=place, lot=lot, serials=serials, when=when
                )
            )
        elif kind == 2:
            target = draw(st.sampled_from(PLACES))
            serials = [serial] if serial else []
            out.append(
                transferred(
                    label,
                    item,
                    len(serials) or quantity,
                    source=place,
                    target=target,
                    lot=lot,
                    serials=serials,
                    when=when,
                )
            )
        elif kind == 3:
            out.append(
                consumed(label, item, 1, place=place, lot=lot, serial=serial, patient_token="PT-1", when=when)
            )
        elif kind == 4:
            out.append(counted(label, item, draw(st.integers(0, 50)), place=place, lot=lot, when=when))
        elif kind == 5:
            out.append(disposed(label, item, quantity, place=place, lot=lot, when=when))
        elif kind == 6:
            out.append(defined(label, item, when=when, supplier=draw(st.sampled_from(("A", "B")))))
        else:
            out.append(consumed(label, item, quantity, place=place, lot=lot, when=when))
    return out
