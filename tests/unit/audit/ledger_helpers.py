"""Builders for audit ledger tests: event streams placed on partitions as the bus does, and tampering."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, select, update

from hub.bus.partitioner import partition_for_key
from hub.ports import BusRecord
from projections.audit.ledger import GENESIS_HASH, AuditLedger, checkpoints, entries
from projections.runtime.tracking import apply_batch, ensure_tables
from schemas.assets import AssetStatus
from schemas.catalogue import dump_event
from schemas.envelope import EventBase, Source
from schemas.work_orders import StartedPayload, WorkOrderStarted
from tests.unit.projections.factories import T0, eid, status_changed
from topics.catalogue import BY_NAME, topic_for_event_type

if TYPE_CHECKING:
    from collections.abc import Sequence

Chain = tuple[str, int]


def work_started(label: str, order: str, *, engineer: str = "张工", minutes: int = 0) -> WorkOrderStarted:
    at = T0 + timedelta(minutes=minutes)
    return WorkOrderStarted(
        event_id=eid(label),
        occurred_at=at,
        recorded_at=at,
        source=Source(system="oa", site="main", message_id=f"m-{label}", adapter_version="test-1"),
        subject=order,
        payload=StartedPayload(engineer=engineer),
    )


def stream(n: int, *, prefix: str = "e") -> list[EventBase]:
    """`n` events over two topics and several subjects, recorded one minute apart."""
    out: list[EventBase] = []
    statuses = list(AssetStatus)
    for i in range(n):
        label = f"{prefix}{i}"
        if i % 3 == 2:
            out.append(work_started(label, f"WO-{i % 4}", engineer=f"工程师{i}", minutes=i))
        else:
            event = status_changed(
                label, f"A{i % 5}", statuses[i % len(statuses)], at=T0 + timedelta(minutes=i)
            )
            out.append(event.model_copy(update={"recorded_at": T0 + timedelta(minutes=i)}))
    return out


def place(events: Sequence[EventBase | bytes], *, start: dict[Chain, int] | None = None) -> list[BusRecord]:
    """Bus records as the bus would write them: catalogue topic, murmur2 partition, next offset."""
    offsets = dict(start or {})
    out = []
    for event in events:
        assert isinstance(event, EventBase)
        topic = topic_for_event_type(event.type).name
        partition = partition_for_key(event.subject, BY_NAME[topic].partitions)
        offset = offsets.get((topic, partition), 0)
        offsets[topic, partition] = offset + 1
        out.append(BusRecord(topic, partition, offset, event.subject, dump_event(event), (), 0))
    return out


def fill(
    engine: Engine, records: Sequence[BusRecord], *, ledger: AuditLedger | None = None, batch: int = 25
) -> None:
    """Apply `records` to the ledger through the tracking layer, in batches, as the runner does."""
    projection = ledger or AuditLedger()
    ensure_tables(engine, projection)
    for i in range(0, len(records), batch):
        apply_batch(engine, projection, records[i : i + batch])


def rows(engine: Engine, chain: Chain) -> list[dict[str, Any]]:
    c = entries.c
    with engine.connect() as conn:
        query = select(entries).where(c.topic == chain[0], c.partition == chain[1]).order_by(c.seq)
        return [dict(r) for r in conn.execute(query).mappings()]


def longest_chain(engine: Engine) -> Chain:
    c = entries.c
    with engine.connect() as conn:
        topic, partition, _ = conn.execute(
            select(c.topic, c.partition, func.count())
            .group_by(c.topic, c.partition)
            .order_by(func.count().desc(), c.topic, c.partition)
        ).first()
    return topic, partition


def _where(chain: Chain, seq: int) -> Any:
    return (entries.c.topic == chain[0]) & (entries.c.partition == chain[1]) & (entries.c.seq == seq)


def set_columns(engine: Engine, chain: Chain, seq: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(entries).where(_where(chain, seq)).values(**values))


def flip_byte(engine: Engine, chain: Chain, seq: int, index: int) -> None:
    """Change one byte of an entry's stored bytes (hashes untouched)."""
    data = bytearray(rows(engine, chain)[seq]["entry_bytes"])
    data[index % len(data)] ^= 0x01
    set_columns(engine, chain, seq, entry_bytes=bytes(data))


def delete_entry(engine: Engine, chain: Chain, seq: int, *, renumber: bool = False) -> None:
    with engine.begin() as conn:
        conn.execute(delete(entries).where(_where(chain, seq)))
        if renumber:
            _shift(conn, chain, seq + 1, -1)


def swap(engine: Engine, chain: Chain, a: int, b: int) -> None:
    """Exchange the seq of two entries (the stored order of their bytes and hashes)."""
    with engine.begin() as conn:
        conn.execute(update(entries).where(_where(chain, a)).values(seq=-1))
        conn.execute(update(entries).where(_where(chain, b)).values(seq=a))
        conn.execute(update(entries).where(_where(chain, -1)).values(seq=b))


def entry_hash(prev_hash: str, data: bytes, record_hash: str | None = None) -> str:
    """The ledger's rule, written out independently of projections.audit.ledger."""
    record = b"" if record_hash is None else bytes.fromhex(record_hash)
    return hashlib.sha256(bytes.fromhex(prev_hash) + hashlib.sha256(data).digest() + record).hexdigest()


def insert_forged(engine: Engine, chain: Chain, at: int, event: EventBase) -> None:
    """Put a well-formed entry at seq `at`, linked to its predecessor, renumbering the entries after it."""
    stored = rows(engine, chain)
    prev = stored[at - 1]["entry_hash"] if at > 0 else GENESIS_HASH
    data = dump_event(event)
    with engine.begin() as conn:
        _shift(conn, chain, at, +1)
        conn.execute(
            entries.insert().values(
                topic=chain[0],
                partition=chain[1],
                seq=at,
                offset=None,
                event_id=str(event.event_id),
                subject=event.subject,
                event_type=event.type,
                recorded_at=event.recorded_at,
                entry_bytes=data,
                prev_hash=prev,
                entry_hash=entry_hash(prev, data),
            )
        )


def rewrite_tail(engine: Engine, chain: Chain, k: int, rewrite: Any) -> int:
    """Replace the bytes of the last `k` entries (rewrite(bytes) -> bytes) and recompute every hash after
    them consistently, checkpoint rows included: the careful attacker. Returns the first rewritten seq."""
    stored = rows(engine, chain)
    first = len(stored) - k
    prev = stored[first - 1]["entry_hash"] if first > 0 else GENESIS_HASH
    with engine.begin() as conn:
        for row in stored[first:]:
            data = rewrite(row["entry_bytes"])
            new_hash = entry_hash(prev, data, row["record_hash"])
            conn.execute(
                update(entries)
                .where(_where(chain, row["seq"]))
                .values(entry_bytes=data, prev_hash=prev, entry_hash=new_hash)
            )
            k_ = checkpoints.c
            conn.execute(
                update(checkpoints)
                .where(k_.topic == chain[0], k_.partition == chain[1], k_.count == row["seq"] + 1)
                .values(head_hash=new_hash)
            )
            prev = new_hash
    return first


def _shift(conn: Any, chain: Chain, from_seq: int, by: int) -> None:
    # Two steps through negative numbers: the primary key forbids two rows at one seq mid-update.
    c = entries.c
    mine = (c.topic == chain[0]) & (c.partition == chain[1])
    conn.execute(update(entries).where(mine, c.seq >= from_seq).values(seq=-(c.seq + by) - 1))
    conn.execute(update(entries).where(mine, c.seq < 0).values(seq=-c.seq - 1))
