"""Exactly-once effect: offsets and event ids recorded in the same transaction as the read model.

Tables (shared by every projection, keyed by projection name):
- `projection_tracking(projection, topic, partition, offset)`: last applied offset per
  partition. This, not the bus's group commit, is where a runner resumes.
- `projection_applied_events(projection, event_id)`: every event applied. Translators re-publish
  the same deterministic event id after a crash, at a new offset; this catches it.
- `projection_poison(...)`: records that are not events, skipped so they never block a partition.

`apply_once` runs inside one transaction: drop redelivered offsets, decode (or take what the
runner decoded once for every projection), record the ids of events not applied before (dropping
the others, and repeats within the batch), hand those to the projection, record poison and
offsets. `apply_together` does that for several projections in one transaction, claiming the
event ids of all of them in one step (each projection's claims stay its own). A crash anywhere
rolls all of it back, so a restart re-applies the batch onto exactly the state it started from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)

from hub.faults import fault_point
from projections.runtime.db import write_transaction
from projections.runtime.decode import Poison, decode
from projections.runtime.derived import OUTBOX_METADATA, ensure_outbox_index, stage
from projections.runtime.sqltypes import UtcDateTime
from projections.runtime.upsert import chunks, in_values, insert_new, upsert

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from sqlalchemy import Connection, Engine

    from hub.ports import BusRecord, TopicPartition
    from projections.runtime.base import Projection
    from projections.runtime.decode import Decoded
    from schemas.catalogue import Event

logger = structlog.get_logger()

TRACKING_METADATA = MetaData()
_APPLIED_KEY = ("projection", "event_id")

projection_tracking = Table(
    "projection_tracking",
    TRACKING_METADATA,
    Column("projection", String(100), nullable=False),
    Column("topic", String(249), nullable=False),  # 249: Kafka's longest topic name
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("projection", "topic", "partition"),
)

# Keyed event id first: the claims of one event by every projection of a runner sit together, and
# `_claim` reads and writes a batch's claims once, in event id order, so each page is visited once
# per batch (keyed by projection first, each projection's random ids touched pages of their own;
# seven projections read the asset topic). Without rowid on SQLite: the key is the row (a rowid
# table adds a second B-tree beside its index). Databases created before keep their
# (projection, event_id) key; the statements below suit both.
projection_applied_events = Table(
    "projection_applied_events",
    TRACKING_METADATA,
    Column("projection", String(100), nullable=False),
    Column("event_id", String(36), nullable=False),
    PrimaryKeyConstraint("event_id", "projection"),
    sqlite_with_rowid=False,
)

projection_poison = Table(
    "projection_poison",
    TRACKING_METADATA,
    Column("projection", String(100), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("event_id", String(64)),
    Column("error", Text, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("projection", "topic", "partition", "offset"),
)


@dataclass(slots=True)
class ApplyOutcome:
    """What one `apply_once` did. `positions`: last applied offset of every partition in the batch."""

    applied: int = 0
    redelivered: int = 0
    duplicates: int = 0
    poisoned: int = 0
    derived: int = 0
    positions: dict[TopicPartition, int] = field(default_factory=dict)


SCHEMA_LOCK_KEY = 0x6875_6273  # any constant; one advisory lock for the hub's schema changes


def ensure_tables(engine: Engine, projections: Projection | Sequence[Projection]) -> None:
    """Create the tracking and outbox tables and the projections' own tables where missing, in one
    write transaction (on SQLite the write lock, on PostgreSQL an advisory lock: serialised)."""
    wanted = (
        tuple(cast("Sequence[Projection]", projections))
        if isinstance(projections, list | tuple)
        else (cast("Projection", projections),)
    )
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Runners start concurrently and share the tracking tables: two CREATE TABLE of one
            # table on a fresh database race on pg_type (UniqueViolation) without this lock.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        TRACKING_METADATA.create_all(conn)
        OUTBOX_METADATA.create_all(conn)
        ensure_outbox_index(conn)
        for projection in wanted:
            projection.metadata.create_all(conn)
            # A projection whose existing tables need a column added since (the audit ledger) says so here.
            upgrade = getattr(projection, "upgrade_schema", None)
            if upgrade is not None:
                upgrade(conn)


def tracked_offsets(
    conn: Connection,
    projection_name: str,
    *,
    for_update: bool = False,
    partitions: Collection[TopicPartition] | None = None,
) -> dict[TopicPartition, int]:
    """Last applied offset per (topic, partition) for a projection (of `partitions` only, if given).

    `for_update` locks the rows (PostgreSQL) so a second runner of the same group, overlapping
    during a rebalance, waits and then sees this one's offsets instead of applying twice.
    `partitions` narrows the lock to a batch's partitions: members of one group own disjoint
    partitions, so two nodes applying their own batches do not wait on each other. (A partition
    with no row yet is not locked; two overlapping members both applying it are told apart by
    the event-id claim, which waits on the other's uncommitted insert.)
    """
    t = projection_tracking.c
    query = select(t.topic, t.partition, t.offset).where(t.projection == projection_name)
    if partitions is not None:
        query = query.where(
            t.topic.in_(sorted({tp[0] for tp in partitions})),
            t.partition.in_(sorted({tp[1] for tp in partitions})),
        )
    rows = conn.execute(query.with_for_update() if for_update else query)
    wanted = None if partitions is None else set(partitions)
    return {
        (topic, partition): offset
        for topic, partition, offset in rows
        if wanted is None or (topic, partition) in wanted
    }


def apply_batch(
    engine: Engine, projection: Projection, records: Sequence[BusRecord], decoded: Decoded | None = None
) -> ApplyOutcome:
    """`apply_once` in its own write transaction, committed on return."""
    with write_transaction(engine, read_model=True) as conn:
        outcome = apply_once(conn, projection, records, decoded=decoded)
        fault_point("projection.before_commit")
        return outcome


def apply_together(
    engine: Engine, batches: Sequence[tuple[Projection, Sequence[BusRecord]]], decoded: Decoded
) -> dict[str, ApplyOutcome]:
    """`apply_once` for each projection with its records, all in ONE write transaction: one lock,
    one commit, every projection's tracking with its rows. Any failure rolls back all of them."""
    with write_transaction(engine, read_model=True) as conn:
        outcomes = _apply_all(conn, batches, decoded)
        fault_point("projection.before_commit")
        return outcomes


def poison_record(engine: Engine, projection: Projection, record: BusRecord, error: str) -> ApplyOutcome:
    """Record an event the projection kept failing on as poison and move its partition past it.

    The runner calls this after retries, for one record; the row keeps where the record sits
    and why it failed, so it can be looked at and replayed once the projection is fixed.
    """
    outcome = ApplyOutcome()
    tp = (record.topic, record.partition)
    with write_transaction(engine, read_model=True) as conn:
        tracked = tracked_offsets(conn, projection.name, for_update=True)
        if record.offset <= tracked.get(tp, -1):
            outcome.redelivered = 1
            return outcome
        event_id = (record.header("event_id") or b"").decode(errors="replace")[
            :64
        ] or None  # the column holds 64
        conn.execute(
            insert(projection_poison), [_poison_row(projection.name, record, Poison(error, event_id))]
        )
        row = {"projection": projection.name, "topic": tp[0], "partition": tp[1], "offset": record.offset}
        upsert(conn, projection_tracking, [row], key=("projection", "topic", "partition"))
    outcome.poisoned = 1
    outcome.positions = {tp: record.offset}
    return outcome


def apply_once(
    conn: Connection, projection: Projection, records: Sequence[BusRecord], *, decoded: Decoded | None = None
) -> ApplyOutcome:
    """Apply a batch of bus records to `projection` exactly once, inside the caller's transaction.

    `decoded`: the records already decoded (by position), shared with the other projections on
    their topics; a record missing from it is decoded here.
    """
    return _apply_all(conn, [(projection, records)], decoded or {})[projection.name]


@dataclass(slots=True)
class _Step:
    """One projection's part of a batch between its redelivery check and its apply."""

    projection: Projection
    outcome: ApplyOutcome
    touched: set[TopicPartition]
    tracked: dict[TopicPartition, int]
    positions: dict[TopicPartition, int]
    events: list[Event]  # the decoded fresh events, in order (repeats included)
    origin: dict[int, BusRecord]  # id(event) -> the record it came from
    poison_rows: list[dict[str, Any]]


def _apply_all(
    conn: Connection, batches: Sequence[tuple[Projection, Sequence[BusRecord]]], decoded: Decoded
) -> dict[str, ApplyOutcome]:
    """Each projection's records exactly once, in three phases: drop what each projection's offsets
    say it applied, claim the event ids of every projection at once, then apply and record offsets.

    Claiming together is the same as claiming before each projection's own apply: no projection
    reads or writes another's claims, only the claim step does.
    """
    steps = [_fresh(conn, projection, records, decoded) for projection, records in batches]
    claimed = _claim(conn, [(step.projection.name, step.events, step.outcome) for step in steps])
    for step, events in zip(steps, claimed, strict=True):
        _finish(conn, step, events)
    return {step.projection.name: step.outcome for step in steps}


def _fresh(conn: Connection, projection: Projection, records: Sequence[BusRecord], decoded: Decoded) -> _Step:
    """Lock and read the projection's offsets, drop redelivered records, decode (or take) the rest."""
    touched = {(r.topic, r.partition) for r in records}
    tracked = tracked_offsets(conn, projection.name, for_update=True, partitions=touched)
    step = _Step(projection, ApplyOutcome(), touched, tracked, dict(tracked), [], {}, [])
    positions = step.positions
    for record in records:
        tp = (record.topic, record.partition)
        if record.offset <= positions.get(tp, -1):
            step.outcome.redelivered += 1
            continue
        positions[tp] = record.offset
        result = decoded.get((record.topic, record.partition, record.offset))
        if result is None:
            result = decode(record)
        if isinstance(result, Poison):
            step.poison_rows.append(_poison_row(projection.name, record, result))
        else:
            step.events.append(result)
            step.origin[id(result)] = record
    return step


def _finish(conn: Connection, step: _Step, events: list[Event]) -> None:
    """Apply the claimed `events`, stage what they derive, record poison and the new offsets."""
    projection, outcome = step.projection, step.outcome
    if events:
        # A projection that needs where each event sat on the log (the audit ledger records
        # partitions and offsets) takes (record, event) pairs; the others take events.
        apply_records = getattr(projection, "apply_records", None)
        derived = (
            apply_records(conn, [(step.origin[id(e)], e) for e in events])
            if apply_records is not None
            else projection.apply(conn, events)
        )
        if derived:
            outcome.derived = stage(conn, projection.name, derived)
    if step.poison_rows:
        # A record redelivered after its poison row was written is filtered by offset above.
        conn.execute(insert(projection_poison), step.poison_rows)
    changed = [
        {"projection": projection.name, "topic": tp[0], "partition": tp[1], "offset": offset}
        for tp, offset in step.positions.items()
        if step.tracked.get(tp) != offset
    ]
    upsert(conn, projection_tracking, changed, key=("projection", "topic", "partition"))
    outcome.positions = {tp: step.positions[tp] for tp in step.touched if tp in step.positions}
    outcome.applied = len(events)
    outcome.poisoned = len(step.poison_rows)


def _claim(conn: Connection, wants: Sequence[tuple[str, Sequence[Event], ApplyOutcome]]) -> list[list[Event]]:
    """For each (projection, events, outcome): record the ids of events the projection has not
    applied before (nor earlier in this batch); return those events, in order.

    One lookup and one insert for every projection of the batch, in event id order: with the
    table keyed event id first, an event's claims by all projections are one page visited once
    (a pass per projection re-read the same pages, each time evicted by the applies between).
    """
    text_ids: dict[int, str] = {}  # id(event) -> str(event.event_id): once, not once per projection
    uniques: list[dict[str, Event]] = []
    for _, events, _ in wants:
        unique: dict[str, Event] = {}
        for event in events:
            event_id = text_ids.get(id(event))
            if event_id is None:
                event_id = text_ids[id(event)] = str(event.event_id)
            unique.setdefault(event_id, event)
        uniques.append(unique)
    wanted = sorted(
        (event_id, name) for (name, _, _), unique in zip(wants, uniques, strict=True) for event_id in unique
    )
    rows = [{"projection": name, "event_id": event_id} for event_id, name in wanted]
    new: set[tuple[str, str]]
    if not rows:
        new = set()
    elif conn.dialect.name == "postgresql":
        # One INSERT ... ON CONFLICT DO NOTHING: a claim another transaction holds uncommitted is
        # waited for, then counted as taken (two overlapping runners never both apply an event).
        returned = insert_new(
            conn, projection_applied_events, rows, key=_APPLIED_KEY, returning=("event_id", "projection")
        )
        new = {(name, event_id) for event_id, name in returned}
    else:
        a = projection_applied_events.c
        names = sorted({name for name, _, _ in wants})
        ids = sorted({event_id for event_id, _ in wanted})
        found: set[tuple[str, str]] = set()
        for chunk in chunks(conn, ids):
            query = select(a.projection, a.event_id).where(
                a.projection.in_(names), in_values(conn, a.event_id, chunk)
            )
            found.update((name, event_id) for name, event_id in conn.execute(query))
        new = {(name, event_id) for event_id, name in wanted} - found
        upsert(
            conn,
            projection_applied_events,
            [r for r in rows if (r["projection"], r["event_id"]) in new],
            key=_APPLIED_KEY,
            update=False,
        )
    out = []
    for (name, events, outcome), unique in zip(wants, uniques, strict=True):
        mine = [event for event_id, event in unique.items() if (name, event_id) in new]
        outcome.duplicates = len(events) - len(mine)
        out.append(mine)
    return out


def _poison_row(projection_name: str, record: BusRecord, poison: Poison) -> dict[str, Any]:
    logger.warning(
        "projection_event_poisoned",
        projection=projection_name,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        event_id=poison.event_id,
        error=poison.error,
    )
    return {
        "projection": projection_name,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "event_id": poison.event_id,
        "error": poison.error,
        "recorded_at": datetime.now(UTC),
    }
