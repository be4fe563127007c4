"""Tamper-evident audit ledger: every canonical, derived and access event, hash-chained per topic-partition.

Tables:
- `audit_ledger_entries(topic, partition, seq, offset, event_id, subject, event_type, recorded_at,
  entry_bytes, record_hash, prev_hash, entry_hash)`, primary key (topic, partition, seq).
- `audit_ledger_checkpoints(topic, partition, count, head_hash, created_at)`: the chain's head
  every `checkpoint_every` entries (created_at = the recorded_at of the entry that reached the
  count, so a rebuild writes the same rows) and whenever `take_checkpoint` is called. Unsigned:
  what exported checkpoints list as marks.
- `audit_ledger_seals`: the same statements signed with a key derived from HUB_SECRET_KEY, plus
  one `head` seal per chain replaced at every append (projections.audit.seals). Written only when
  the ledger is given a seal key (hub.bootstrap always gives one).

The chain, precisely. For each (topic, partition) the entries are numbered seq = 0, 1, 2, ... in
apply order, which is offset order within a partition. With `entry_bytes` = `dump_event(event)`
(the event's canonical JSON, UTF-8), `record_hash` = the SHA-256 of the bus record the event was
read from, exactly as stored (projections.audit.record; absent for an entry applied without its
record) and `||` byte concatenation:

    content_hash(e) = SHA-256(entry_bytes(e)) || record_hash(e)          (64 bytes; 32 without record)
    entry_hash(e)   = SHA-256(prev_hash(e) || content_hash(e))          (32 bytes)
    prev_hash(e_0)  = 32 zero bytes (GENESIS_HASH);  prev_hash(e_n) = entry_hash(e_(n-1))

So the chain covers the log record too: editing a record on the log no longer matches its
entry's record_hash, and changing record_hash breaks the chain.

Hashes are stored as lowercase hex. A checkpoint (count N, head_hash H) says: folding the first
N entries of the chain from the genesis hash gives H. Anyone holding the entry bytes, or only
their content hashes, can recompute it with nothing but SHA-256.

Only the bytes (and the record hash) are hashed; the row's other columns (event_id, subject, event_type,
recorded_at) are copies for querying, which replay.audit checks against the bytes, and `seq` is
the entry's place in the chain. The ledger runs under projections.runtime.tracking like every
projection, so a redelivered offset or a re-published event id never gets a second entry.

Position. `apply(conn, events)` receives events without their bus records, so it places each
event as its publisher did: topic = the catalogue topic of its type, partition =
topics.partitioning's rule for its subject, which both buses follow (hub.ports.OutRecord); the
offset is then unknown (NULL). `apply_records(conn, pairs)` takes the bus records too and stores
their partition and offset and the record hash; the tracking layer (projections.runtime.tracking) calls
it with every record it applies, so live and rebuilt entries always carry both. Topics are
stored by catalogue name, without the deployment prefix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
    inspect,
    select,
    text,
)

from projections.audit.record import record_digest
from projections.audit.seals import seal_row
from projections.runtime.sqltypes import UtcDateTime
from projections.runtime.upsert import insert_rows, upsert
from schemas.catalogue import dump_event
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS, topic_for_event_type
from topics.partitioning import partition_for_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy import Connection

    from hub.ports import BusRecord
    from schemas.catalogue import Event

NAME = "audit_ledger"
_CHAINED = (*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS)  # audited API reads are chained too
TOPICS: tuple[str, ...] = tuple(spec.name for spec in _CHAINED)
METADATA = MetaData()
GENESIS_HASH = "00" * 32
DEFAULT_CHECKPOINT_EVERY = 10_000
_GENESIS = bytes(32)
_PARTITIONS = {spec.name: spec.partitions for spec in _CHAINED}

entries = Table(
    f"{NAME}_entries",
    METADATA,
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("offset", BigInteger),
    Column("event_id", String(36), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("entry_bytes", LargeBinary, nullable=False),
    Column("record_hash", String(64)),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    PrimaryKeyConstraint("topic", "partition", "seq"),
    # Auditor exports select by time window or by subject; verify looks event ids up.
    Index(f"{NAME}_entries_recorded_at", "recorded_at"),
    Index(f"{NAME}_entries_subject", "subject"),
    Index(f"{NAME}_entries_event_id", "event_id"),
    # Readers and verify find the entry of a log record by its position.
    Index(f"{NAME}_entries_offset", "topic", "partition", "offset"),
)

checkpoints = Table(
    f"{NAME}_checkpoints",
    METADATA,
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("topic", "partition", "count"),
)

seals = Table(
    f"{NAME}_seals",
    METADATA,
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("kind", String(8), nullable=False),  # "head" (one per chain) or "mark" (kept)
    Column("count", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("mac", String(64), nullable=False),
    PrimaryKeyConstraint("topic", "partition", "kind", "count"),
)


def content_hash(entry_bytes: bytes, record_hash: str | None = None) -> bytes:
    """What an entry contributes to the chain: SHA-256 of its bytes, then its record hash if any."""
    digest = hashlib.sha256(entry_bytes).digest()
    return digest if record_hash is None else digest + bytes.fromhex(record_hash)


def chain_hash(prev_hash: str, content: bytes) -> str:
    """entry_hash (hex) of an entry with predecessor hash `prev_hash` (hex) and content hash `content`."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + content).hexdigest()


def partition_of(event: Event) -> tuple[str, int]:
    """(catalogue topic, partition) where the publisher put `event`: keyed by its subject."""
    topic = topic_for_event_type(event.type).name
    return topic, partition_for_key(event.subject, _PARTITIONS[topic])


def catalogue_topic(topic: str) -> str:
    """The catalogue name of a (possibly prefixed) bus topic name."""
    for name in TOPICS:
        if topic.endswith(name):
            return name
    raise KeyError(f"{topic!r} is not a topic the audit ledger follows")


@dataclass(frozen=True, slots=True)
class Head:
    """A chain's length and last entry hash (GENESIS_HASH when empty)."""

    count: int
    head_hash: str


class AuditLedger:
    """The audit ledger projection (see the module docstring for the chain)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA
    # Cases of the shared projection contract (tests/contract) this read model is exempt from, and why.
    contract_exemptions: ClassVar[Mapping[str, str]] = {
        "subject_permutation": "each chain records its partition's order, by design: the same events "
        "in another order within a partition are another chain (replay reads the log as written)",
    }

    def __init__(
        self, *, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, seal_key: bytes | None = None
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.checkpoint_every = checkpoint_every
        self.seal_key = seal_key

    def upgrade_schema(self, conn: Connection) -> None:
        """Called by projections.runtime.tracking.ensure_tables after creating missing tables."""
        upgrade_schema(conn)

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        """Append `events`, in order, each to the chain of the partition its subject keys it to."""
        self._append(conn, [(*partition_of(event), None, None, event) for event in events])

    def apply_records(self, conn: Connection, pairs: Sequence[tuple[BusRecord, Event]]) -> None:
        """Append events with the bus record they were read from (partition, offset, record hash)."""
        self._append(
            conn,
            [
                (catalogue_topic(rec.topic), rec.partition, rec.offset, record_digest(rec), event)
                for rec, event in pairs
            ],
        )

    def _append(
        self, conn: Connection, items: Sequence[tuple[str, int, int | None, bytes | None, Event]]
    ) -> None:
        heads: dict[tuple[str, int], tuple[int, bytes]] = {}
        for topic, partition, _, _, _ in items:
            if (topic, partition) not in heads:
                head = chain_head(conn, topic, partition)
                heads[topic, partition] = (head.count, bytes.fromhex(head.head_hash))
        rows: list[dict[str, Any]] = []
        marks: list[dict[str, Any]] = []
        every = self.checkpoint_every
        last_at: dict[tuple[str, int], datetime] = {}
        for topic, partition, offset, record, event in items:
            count, prev = heads[topic, partition]
            data = dump_event(event)
            digest = hashlib.sha256(prev + hashlib.sha256(data).digest() + (record or b"")).digest()
            entry_hash = digest.hex()
            last_at[topic, partition] = event.recorded_at
            rows.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "seq": count,
                    "offset": offset,
                    "event_id": str(event.event_id),
                    "subject": event.subject,
                    "event_type": event.type,
                    "recorded_at": event.recorded_at,
                    "entry_bytes": data,
                    "record_hash": None if record is None else record.hex(),
                    "prev_hash": prev.hex(),
                    "entry_hash": entry_hash,
                }
            )
            count += 1
            heads[topic, partition] = (count, digest)
            if count % every == 0:
                marks.append(_mark(topic, partition, count, entry_hash, event.recorded_at))
        if rows:
            # A plain insert: a second entry at a taken (topic, partition, seq) is a bug, never a no-op.
            insert_rows(conn, entries, rows)
        if marks:
            conn.execute(insert(checkpoints), marks)
        if self.seal_key is not None and rows:
            key = self.seal_key
            head_seals = [
                seal_row(key, "head", t, p, count=count, head_hash=digest.hex(), created_at=last_at[t, p])
                for (t, p), (count, digest) in heads.items()
                if (t, p) in last_at
            ]
            mark_seals = [
                seal_row(
                    key,
                    "mark",
                    m["topic"],
                    m["partition"],
                    count=m["count"],
                    head_hash=m["head_hash"],
                    created_at=m["created_at"],
                )
                for m in marks
            ]
            write_seals(conn, head_seals, mark_seals)


def upgrade_schema(conn: Connection) -> None:
    """Bring a ledger written before record hashes up to date: the column and its index.

    Its older entries keep no record hash (the chain rule leaves it out for them; verify compares
    their log records by event); entries appended from now on carry one.
    """
    columns = {column["name"] for column in inspect(conn).get_columns(entries.name)}
    if "record_hash" not in columns:
        conn.execute(text(f"ALTER TABLE {entries.name} ADD COLUMN record_hash VARCHAR(64)"))
    for index in entries.indexes:
        index.create(conn, checkfirst=True)


def chain_head(conn: Connection, topic: str, partition: int) -> Head:
    """Length and head hash of one chain."""
    c = entries.c
    row = conn.execute(
        select(c.seq, c.entry_hash)
        .where(c.topic == topic, c.partition == partition)
        .order_by(c.seq.desc())
        .limit(1)
    ).first()
    return Head(0, GENESIS_HASH) if row is None else Head(int(row.seq) + 1, str(row.entry_hash))


def chain_heads(conn: Connection) -> dict[tuple[str, int], Head]:
    """Length and head hash of every chain in the ledger."""
    c = entries.c
    partitions = conn.execute(select(c.topic, c.partition).distinct()).all()
    return {(t, p): chain_head(conn, t, p) for t, p in sorted(partitions)}


def take_checkpoint(
    conn: Connection, *, now: datetime, seal_key: bytes | None = None
) -> dict[tuple[str, int], Head]:
    """Record the head of every chain as a checkpoint created at `now` (and a signed mark seal when
    given the key); return the heads."""
    heads = chain_heads(conn)
    rows = [_mark(t, p, head.count, head.head_hash, now) for (t, p), head in heads.items()]
    # A chain that has not grown since its last checkpoint keeps the earlier row.
    upsert(conn, checkpoints, rows, key=("topic", "partition", "count"), update=False)
    if seal_key is not None:
        marks = [
            seal_row(seal_key, "mark", t, p, count=h.count, head_hash=h.head_hash, created_at=now)
            for (t, p), h in heads.items()
        ]
        write_seals(conn, [], marks)
    return heads


def write_seals(conn: Connection, heads: list[dict[str, Any]], marks: list[dict[str, Any]]) -> None:
    """Replace the head seal of each chain in `heads`; add the `marks` not kept yet (rows from seal_row)."""
    c = seals.c
    for row in heads:
        conn.execute(
            delete(seals).where(c.topic == row["topic"], c.partition == row["partition"], c.kind == "head")
        )
    if heads:
        conn.execute(insert(seals), heads)
    if marks:
        key = ("topic", "partition", "kind", "count")
        upsert(conn, seals, marks, key=key, update=False)


def _mark(topic: str, partition: int, count: int, head_hash: str, created_at: datetime) -> dict[str, Any]:
    return {
        "topic": topic,
        "partition": partition,
        "count": count,
        "head_hash": head_hash,
        "created_at": created_at,
    }
