"""Event streams and helpers for the replay tests: random asset streams, publishing, small projections."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, select

from hub.ports import OutRecord, event_out_record
from schemas._base import DeptRef, Identifier, LocationRef, SourceSystem
from schemas.assets import (
    AssetIdentifierLinked,
    AssetRelocated,
    AssetStatus,
    IdentifierLinkedPayload,
    RelocatedPayload,
)
from schemas.derived import AssetIdentityConflict, IdentityConflictPayload
from schemas.envelope import EventBase, Source
from tests.unit.projections.factories import (
    corrected,
    decommissioned,
    linked,
    registered,
    relocated,
    status_changed,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hub.bus.embedded import EmbeddedBus
    from schemas.catalogue import Event

ASSET_TOPIC = "canonical.asset.v1"
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
DEPTS = (DeptRef(code="ICU", name="重症医学科"), DeptRef(code="ER", name="急诊科"), DeptRef(name="库房"))


SHARED_UDIS = 3  # identifiers several assets claim: contested, settled by projections.assets.claims


def random_stream(seed: int, n: int, *, assets: int = 12, prefix: str = "") -> list[EventBase]:
    """`n` asset events over `assets` assets: registrations, moves, status changes, corrections,
    links (some to UDIs other assets claim too), decommissions, business times that tie and go
    backwards, and re-published events."""
    rng = random.Random(seed)
    out: list[EventBase] = []
    registered_assets: set[str] = set()
    for i in range(n):
        if out and rng.random() < 0.08:
            out.append(rng.choice(out))  # the same event again, as after a translator crash
            continue
        asset = f"A{rng.randrange(assets)}"
        at = T0 + timedelta(hours=rng.randrange(0, 48))
        label = f"{prefix}{seed}-{i}"
        kind = rng.randrange(7)
        if kind <= 1:
            udi = f"U-{rng.randrange(SHARED_UDIS)}" if rng.random() < 0.3 else None
            name = rng.choice(["呼吸机", "监护仪"])
            out.append(registered(label, asset, at=at, card=f"C-{asset}", name=name, udi=udi))
            registered_assets.add(asset)
        elif kind == 2:
            out.append(status_changed(label, asset, rng.choice(list(AssetStatus)), at=at))
        elif kind == 3:
            dept = rng.choice(DEPTS)
            out.append(relocated(label, asset, code=dept.code, name=dept.name, location=f"{i}床", at=at))
        elif kind == 4:
            out.append(corrected(label, asset, ["name"], at=at, name=f"设备{i}"))
        elif kind == 5 and asset in registered_assets and rng.random() < 0.5:
            # Contested: only after the asset's registration (same subject, same partition), so it
            # claims as an anchored record. A provisional record linking a contested identifier
            # merges with whichever record holds it when the link is read (projections.assets.identity).
            out.append(linked(label, asset, "udi", f"U-{rng.randrange(SHARED_UDIS)}", at=at))
        elif kind == 5:
            out.append(linked(label, asset, "udi", f"U-{asset}-{rng.randrange(2)}", at=at))
        else:
            out.append(decommissioned(label, asset, at=at))
    return out


async def publish(bus: EmbeddedBus | Any, events: Sequence[EventBase], *, topic: str = ASSET_TOPIC) -> None:
    """Publish events as the translators do: keyed by subject, record time = recorded_at."""
    await bus.publish(topic, [event_out_record(e) for e in events])


async def publish_raw(bus: EmbeddedBus | Any, key: str, value: bytes, *, topic: str = ASSET_TOPIC) -> None:
    await bus.publish(topic, [OutRecord(key=key, value=value)])


def source(system: str, message_id: str, raw_ref: str | None = None) -> Source:
    return Source(system=system, site="main", message_id=message_id, raw_ref=raw_ref, adapter_version="t/1")


def moved(
    label: str, asset: str, dept: DeptRef, *, at: datetime, recorded: datetime, reason: str | None = None
) -> AssetRelocated:
    """asset.relocated with explicit business and recorded times."""
    return AssetRelocated(
        event_id=uuid5(NAMESPACE_URL, label),
        occurred_at=at,
        recorded_at=recorded,
        source=source("hrp", f"msg-{label}"),
        subject=asset,
        payload=RelocatedPayload(to=LocationRef(department=dept), reason=reason),
    )


def link(label: str, asset: str, identifier: Identifier, *, at: datetime, system: str = "hrp") -> EventBase:
    return AssetIdentifierLinked(
        event_id=uuid5(NAMESPACE_URL, label),
        occurred_at=at,
        recorded_at=at,
        source=source(system, f"msg-{label}"),
        subject=asset,
        payload=IdentifierLinkedPayload(identifier=identifier, linked_by="mapping"),
    )


def table_digest(engine: Engine, table: Table) -> str:
    """sha256 of a table's rows read in ONE statement (one snapshot on both databases)."""
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
    return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()


def conflict_for(subject: str, at: datetime, *, concluded: datetime | None = None) -> AssetIdentityConflict:
    """A derived event with an id determined by its subject (as projections mint them), concluded
    (recorded_at) at `concluded`, by default when it occurred."""
    return AssetIdentityConflict(
        event_id=uuid5(NAMESPACE_URL, f"conflict:{subject}"),
        occurred_at=at,
        recorded_at=concluded or at,
        source=Source(system=SourceSystem.HUB, site="main", message_id=f"c:{subject}", adapter_version="hub"),
        subject=subject,
        payload=IdentityConflictPayload(
            identifier=Identifier(scheme="udi", value="X"), asset_ids=[subject, "B"]
        ),
    )


class Concluding:
    """A projection that keeps one row per subject and concludes one derived event per subject;
    its tick concludes one more ("ticked"), recorded at the time it was ticked at."""

    name = "concluding"
    topics = (ASSET_TOPIC,)
    metadata = MetaData()
    seen = Table("concluding_seen", metadata, Column("subject", String(64), primary_key=True))

    def apply(self, conn: Connection, events: Sequence[Event]) -> Sequence[EventBase]:
        from projections.runtime.upsert import upsert

        subjects = sorted({e.subject for e in events})
        upsert(conn, self.seen, [{"subject": s} for s in subjects], key=("subject",), update=False)
        return [conflict_for(s, T0) for s in subjects]

    def tick(self, conn: Connection, now: datetime) -> Sequence[EventBase]:
        return [conflict_for("ticked", T0, concluded=now)]
