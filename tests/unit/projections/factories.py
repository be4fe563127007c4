"""Builders for asset events, bus records and table digests used by the projection tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, select

from hub.ports import BusRecord
from schemas._base import DeptRef, Identifier, LocationRef, Money
from schemas.assets import (
    AssetDecommissioned,
    AssetDetails,
    AssetDetailsCorrected,
    AssetDetailsCorrectedPayload,
    AssetIdentifierLinked,
    AssetRegistered,
    AssetRegisteredPayload,
    AssetRelocated,
    AssetStatus,
    AssetStatusChanged,
    Category,
    DecommissionedPayload,
    IdentifierLinkedPayload,
    RelocatedPayload,
    StatusChangedPayload,
)
from schemas.catalogue import dump_event
from schemas.envelope import EventBase, Source

if TYPE_CHECKING:
    from collections.abc import Sequence

TOPIC = "canonical.asset.v1"
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
_NS = UUID("9a3f5a8e-1111-4c1d-8e0b-7d4f1a2c8b90")


def eid(label: str) -> UUID:
    """A deterministic event id for a test label."""
    return uuid5(_NS, label)


def _source(system: str = "hrp") -> Source:
    return Source(system=system, site="main", message_id="msg-1", adapter_version="test-1")


def _envelope(label: str, asset_id: str, at: datetime | None, recorded: datetime | None) -> dict[str, Any]:
    occurred = at or T0
    return {
        "event_id": eid(label),
        "occurred_at": occurred,
        "recorded_at": recorded or occurred + timedelta(minutes=5),
        "source": _source(),
        "subject": asset_id,
    }


def registered(
    label: str,
    asset_id: str,
    *,
    at: datetime | None = None,
    recorded: datetime | None = None,
    card: str | None = None,
    **details: Any,
) -> AssetRegistered:
    """asset.registered with an HRP card identifier and the given AssetDetails fields."""
    defaults: dict[str, Any] = {
        "name": "呼吸机",
        "model": "SV300",
        "manufacturer": "迈瑞",
        "department": DeptRef(code="ICU", name="重症医学科"),
        "category": Category(code="6854", name="手术室、急救室、诊疗室设备及器具"),
        "status": AssetStatus.IN_USE,
        "original_value": Money(amount=Decimal("185000.00")),
    }
    defaults.update(details)
    return AssetRegistered(
        **_envelope(label, asset_id, at, recorded),
        payload=AssetRegisteredPayload(
            identifiers=[Identifier(scheme="hrp.card", value=card or f"ZC-{asset_id}")],
            details=AssetDetails(**defaults),
        ),
    )


def status_changed(
    label: str, asset_id: str, status: AssetStatus, *, at: datetime | None = None, text: str | None = None
) -> AssetStatusChanged:
    return AssetStatusChanged(
        **_envelope(label, asset_id, at, None),
        payload=StatusChangedPayload(status=status, status_text=text),
    )


def relocated(
    label: str,
    asset_id: str,
    *,
    code: str | None,
    name: str | None,
    location: str | None = None,
    at: datetime | None = None,
) -> AssetRelocated:
    to = LocationRef(department=DeptRef(code=code, name=name), location=location)
    return AssetRelocated(**_envelope(label, asset_id, at, None), payload=RelocatedPayload(to=to))


def corrected(
    label: str, asset_id: str, changed: Sequence[str], *, at: datetime | None = None, **details: Any
) -> AssetDetailsCorrected:
    return AssetDetailsCorrected(
        **_envelope(label, asset_id, at, None),
        payload=AssetDetailsCorrectedPayload(details=AssetDetails(**details), changed_fields=list(changed)),
    )


def decommissioned(label: str, asset_id: str, *, at: datetime | None = None) -> AssetDecommissioned:
    return AssetDecommissioned(
        **_envelope(label, asset_id, at, None),
        payload=DecommissionedPayload(decommissioned_on=(at or T0).date(), reason="报废"),
    )


def linked(
    label: str, asset_id: str, scheme: str, value: str, *, at: datetime | None = None
) -> AssetIdentifierLinked:
    return AssetIdentifierLinked(
        **_envelope(label, asset_id, at, None),
        payload=IdentifierLinkedPayload(
            identifier=Identifier(scheme=scheme, value=value), linked_by="mapping"
        ),
    )


def record(value: bytes | EventBase, offset: int, *, partition: int = 0, topic: str = TOPIC) -> BusRecord:
    """A bus record carrying an event (or raw bytes) at a given position."""
    data = dump_event(value) if isinstance(value, EventBase) else value
    return BusRecord(
        topic=topic, partition=partition, offset=offset, key=None, value=data, headers=(), timestamp_ms=0
    )


def records(events: Sequence[EventBase | bytes], *, start: int = 0, partition: int = 0) -> list[BusRecord]:
    """Consecutive records on one partition, from offset `start`."""
    return [record(e, start + i, partition=partition) for i, e in enumerate(events)]


def digest(engine: Engine, *metadatas: MetaData, exclude: Sequence[str] = ()) -> str:
    """sha256 over every row of every table (tables by name, rows sorted): equal tables, equal digest."""
    h = hashlib.sha256()
    with engine.connect() as conn:
        for md in metadatas:
            for table in sorted(md.tables.values(), key=lambda t: t.name):
                if table.name in exclude:
                    continue
                rows = sorted(repr(tuple(row)) for row in conn.execute(select(table)))
                h.update(table.name.encode())
                for row in rows:
                    h.update(row.encode())
    return h.hexdigest()


ASSETS = ("A1", "A2", "A3")
DEPTS = (DeptRef(code="ICU", name="重症医学科"), DeptRef(code="ER", name="急诊科"), DeptRef(name="库房"))
NAMES = ("呼吸机", "监护仪", None)


@st.composite
def asset_events(draw: st.DrawFn) -> list[EventBase]:
    """A stream over three assets, business times that tie and go backwards, and re-published events."""
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 25))):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # the same event again, as after a translator crash
            continue
        asset = draw(st.sampled_from(ASSETS))
        at = T0 + timedelta(hours=draw(st.integers(0, 4)))
        label = f"e{i}"
        kind = draw(st.integers(0, 5))
        if kind == 0:
            out.append(
                registered(
                    label,
                    asset,
                    at=at,
                    name=draw(st.sampled_from(NAMES)),
                    card=draw(st.sampled_from(["C1", "C2", None])),
                )
            )
        elif kind == 1:
            out.append(status_changed(label, asset, draw(st.sampled_from(list(AssetStatus))), at=at))
        elif kind == 2:
            dept = draw(st.sampled_from(DEPTS))
            out.append(
                relocated(
                    label,
                    asset,
                    code=dept.code,
                    name=dept.name,
                    location=draw(st.sampled_from(["1床", None])),
                    at=at,
                )
            )
        elif kind == 3:
            fields = draw(
                st.lists(
                    st.sampled_from(["name", "department", "status", "location"]), min_size=1, unique=True
                )
            )
            out.append(
                corrected(
                    label,
                    asset,
                    fields,
                    at=at,
                    name=draw(st.sampled_from(NAMES)),
                    department=draw(st.sampled_from(DEPTS)),
                    status=AssetStatus.SEALED,
                )
            )
        elif kind == 4:
            out.append(decommissioned(label, asset, at=at))
        else:
            out.append(linked(label, asset, "udi", draw(st.sampled_from(["U1", "U2"])), at=at))
    return out
