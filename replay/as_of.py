"""Bitemporal as-of: the read models as they stood at a business time, as the hub knew them then.

Two times, because auditors ask two questions. `occurred_at` (business time, from the source)
says which facts had happened; `known_at` (the hub's `recorded_at`, when it learned them) says
which of those the hub already knew. A correction recorded a week late is in the answer for a
`known_at` after it arrived and not in the answer for one before, whatever its business time.

How. The projections' topics are read from offset 0 with a manually assigned reader (never a
consumer group), and each record whose event has `recorded_at <= known_at` and
`occurred_at <= occurred_at` is applied, in log order, through `projections.runtime.tracking.apply_batch`
(the live apply path) into a scratch database. A record that is not an event (poison) is kept
when its record timestamp (the hub's recorded_at) is not after `known_at`, and recorded as
poison, as live. Time-aware projections tick once, at `occurred_at`. Derived events are staged in
the scratch and never published. Live tables are never touched.

Why not seek by timestamp to skip part of the log: record timestamps are `recorded_at`, and
they are not monotonic in log order (a dead letter re-translated after a mapping fix is
published today with the receive time of its raw message). A seek finds the first record at or
after a time; records before it are all earlier, so a seek can skip a prefix for a *lower* bound
on recorded_at (replay.history does that), but `known_at` is an *upper* bound: any later record
may still be older. So as-of reads from offset 0 and filters on the event's own fields.

With a `ledger` (replay.audit.match.LedgerMatcher), every record read is checked against its
audit ledger entry first, and a record that no longer matches stops the as-of with
RecordTampered naming it (nothing is written), unless `accept_tampered`.

`write_as_of` writes every projection into a new SQLite file (with an `as_of_meta` table saying
what it is); `subject_as_of` / `asset_as_of` compute one subject's rows in memory, reading only the
partition its key hashes to (topics.partitioning, which both buses follow).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Column, MetaData, String, Table, Text, event, insert
from sqlalchemy.pool import StaticPool

from projections.assets.registry import AssetRegistry, get_asset
from projections.runtime.base import Ticking
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.decode import Poison, decode
from projections.runtime.derived import stage
from projections.runtime.tracking import apply_batch, ensure_tables
from replay.audit.match import refuse_tampered
from replay.errors import ReplayFailed
from replay.reader import DEFAULT_BATCH, LogReader
from topics.partitioning import partition_for_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from sqlalchemy import Connection, Engine

    from hub.ports import BusRecord, EventBus, TopicPartition
    from projections.runtime.base import Projection
    from replay.audit.match import LedgerMatcher

T = TypeVar("T")

META = MetaData()
as_of_meta = Table(
    "as_of_meta", META, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False)
)


@dataclass(frozen=True, slots=True)
class Bitemporal:
    """The two cut-offs. Both must be timezone-aware."""

    occurred_at: datetime
    known_at: datetime

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.known_at.tzinfo is None:
            raise ValueError("as-of times must carry a time zone")

    def admits(self, record: BusRecord) -> bool:
        """True when the record's event had happened by `occurred_at` and was known by `known_at`."""
        result = decode(record)
        if isinstance(result, Poison):
            return record.timestamp_ms <= self.known_at.timestamp() * 1000
        return result.recorded_at <= self.known_at and result.occurred_at <= self.occurred_at


@dataclass
class AsOfReport:
    """What `write_as_of` wrote."""

    out: Path
    when: Bitemporal
    records: int = 0
    selected: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def write_as_of(
    bus: EventBus,
    projections: Sequence[Projection],
    out: Path,
    *,
    occurred_at: datetime,
    known_at: datetime,
    prefix: str = "",
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    ledger: LedgerMatcher | None = None,
    accept_tampered: bool = False,
) -> AsOfReport:
    """Write a new SQLite file at `out` holding every projection as of (occurred_at, known_at)."""
    when = Bitemporal(occurred_at, known_at)
    if await asyncio.to_thread(out.exists):
        raise ReplayFailed(f"{out} exists: as-of writes a new file and never overwrites one")
    partial = out.with_name(out.name + ".partial")
    _unlink_sqlite(partial)  # a leftover of an interrupted run
    report = AsOfReport(out=out, when=when, applied={p.name: 0 for p in projections})
    started = time.perf_counter()
    engine = _file_engine(partial)
    try:
        await asyncio.to_thread(_create_tables, engine, projections)
        by_topic: dict[str, list[Projection]] = {}
        for projection in projections:
            for topic in projection.topics:
                by_topic.setdefault(f"{prefix}{topic}", []).append(projection)
        async with LogReader(bus, list(by_topic), batch_size=batch_size) as reader:
            until = await reader.last_offsets()
            total = sum(last + 1 for last in until.values())
            async for batch in reader.read(until, settle=True):
                if ledger is not None:
                    found = await asyncio.to_thread(ledger.check, batch)
                    refuse_tampered(found, what="as-of", accept=accept_tampered)
                kept = await asyncio.to_thread(_apply_admitted, engine, by_topic, batch, when, report)
                report.records += len(batch)
                report.selected += kept
                if progress is not None:
                    progress(report.records, max(total, report.records))
        await asyncio.to_thread(_tick_all, engine, projections, when.occurred_at)
        await asyncio.to_thread(_write_meta, engine, report, until)
    except BaseException:
        engine.dispose()
        _unlink_sqlite(partial)
        raise
    engine.dispose()
    await asyncio.to_thread(_publish_file, partial, out)
    report.seconds = time.perf_counter() - started
    return report


async def subject_as_of(
    bus: EventBus,
    projection: Projection,
    subject: str,
    read: Callable[[Connection], T],
    *,
    occurred_at: datetime,
    known_at: datetime,
    prefix: str = "",
    ledger: LedgerMatcher | None = None,
) -> T:
    """`read` over `projection` fed only with `subject`'s events, as of (occurred_at, known_at).

    Reads only the partition `subject` hashes to on each of the projection's topics, keeps the
    records keyed by it, and applies them into an in-memory SQLite database.
    """
    when = Bitemporal(occurred_at, known_at)
    engine = make_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    try:
        await asyncio.to_thread(ensure_tables, engine, projection)
        topics = [f"{prefix}{t}" for t in projection.topics]
        async with LogReader(bus, topics) as reader:
            last = await reader.last_offsets()
            counts: dict[str, int] = {}
            for topic, _ in last:
                counts[topic] = counts.get(topic, 0) + 1
            until = {
                tp: off for tp, off in last.items() if tp[1] == partition_for_key(subject, counts[tp[0]])
            }
            async for batch in reader.read(until, settle=True):
                mine = [r for r in batch if r.key == subject and when.admits(r)]
                if mine and ledger is not None:
                    found = await asyncio.to_thread(ledger.check, mine)
                    refuse_tampered(found, what="as-of", accept=False)
                if mine:
                    await asyncio.to_thread(apply_batch, engine, projection, mine)
        await asyncio.to_thread(_tick_all, engine, [projection], when.occurred_at)

        def run_read() -> T:
            with engine.connect() as conn:
                return read(conn)

        return await asyncio.to_thread(run_read)
    finally:
        engine.dispose()


async def asset_as_of(
    bus: EventBus,
    asset_id: str,
    *,
    occurred_at: datetime,
    known_at: datetime,
    prefix: str = "",
    ledger: LedgerMatcher | None = None,
) -> dict[str, Any] | None:
    """The asset registry's row for `asset_id` (as `get_asset` returns it) as of the two times, or None."""
    return await subject_as_of(
        bus,
        AssetRegistry(),
        asset_id,
        lambda conn: get_asset(conn, asset_id),
        occurred_at=occurred_at,
        known_at=known_at,
        prefix=prefix,
        ledger=ledger,
    )


def _apply_admitted(
    engine: Engine,
    by_topic: dict[str, list[Projection]],
    batch: Sequence[BusRecord],
    when: Bitemporal,
    report: AsOfReport,
) -> int:
    kept = [r for r in batch if when.admits(r)]
    per_projection: dict[str, tuple[Projection, list[BusRecord]]] = {}
    for record in kept:
        for projection in by_topic.get(record.topic, ()):
            per_projection.setdefault(projection.name, (projection, []))[1].append(record)
    for projection, records in per_projection.values():
        report.applied[projection.name] += apply_batch(engine, projection, records).applied
    return len(kept)


def _tick_all(engine: Engine, projections: Sequence[Projection], now: datetime) -> None:
    for projection in projections:
        if isinstance(projection, Ticking):
            with write_transaction(engine) as conn:
                derived = projection.tick(conn, now)
                if derived:
                    stage(conn, projection.name, derived)


def _create_tables(engine: Engine, projections: Sequence[Projection]) -> None:
    for projection in projections:
        ensure_tables(engine, projection)
    with write_transaction(engine) as conn:
        META.create_all(conn)


def _write_meta(engine: Engine, report: AsOfReport, read_to: dict[TopicPartition, int]) -> None:
    rows = {
        "occurred_at": report.when.occurred_at.astimezone(UTC).isoformat(),
        "known_at": report.when.known_at.astimezone(UTC).isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "records_read": str(report.records),
        "events_selected": str(report.selected),
        "applied_per_projection": json.dumps(report.applied, sort_keys=True),
        "end_offsets_at_start": json.dumps({f"{t}[{p}]": o + 1 for (t, p), o in sorted(read_to.items())}),
    }
    with write_transaction(engine) as conn:
        conn.execute(insert(as_of_meta), [{"key": k, "value": v} for k, v in rows.items()])


def _file_engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        # Nothing to protect until the file is complete: it is fsync'd before it is renamed into place.
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    return engine


def _publish_file(partial: Path, out: Path) -> None:
    import sqlite3  # noqa: PLC0415  (only to switch the finished file out of WAL mode)

    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # no -wal/-shm beside the file an auditor receives
    finally:
        conn.close()
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    # link + unlink, not rename: a file that appeared at `out` meanwhile is refused, never replaced.
    try:
        os.link(partial, out)
    except FileExistsError as exc:
        raise ReplayFailed(f"{out} appeared while the as-of file was written; left it alone") from exc
    finally:
        partial.unlink()
    dir_fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
