"""Rebuild a projection from offset 0 into fresh tables while the live one serves; check; swap.

`rebuild(...)`:
1. open a scratch area beside the live read models (replay.scratch) and create the
   projection's tables and the tracking tables there;
2. read the projection's topics from offset 0 with a manually assigned reader (never the live
   consumer group) and apply every batch through `projections.runtime.tracking.apply_batch`, the live
   path: same decoding, duplicate and poison handling, same tracking rows. Derived events are
   staged in the scratch and never published by the rebuild (replay.swap says which ones the
   live runner publishes after the swap: only those it had not published already);
3. a time-aware projection (`Ticking`) ticks once with the clock, as a runner does after a run
   (what it concludes is compared without its conclusion time, see replay.compare);
4. optionally compare with the live tables (replay.compare), at identical log positions;
5. catch up with the live projection and swap (replay.swap) in one transaction; if the live
   runner applied more in the meantime, catch up again and retry;
6. drop the scratch, whatever happened. The live tables change only in step 5's transaction.

How far the rebuild reads: without a check, to the end offsets the bus reported at the start
(then on to the real end, see replay.reader), and at least as far as the live projection; with a
check, exactly to the live projection's positions, so the two are comparable row for row.
With a `ledger` (replay.audit.match.LedgerMatcher), every record read is first checked against
its audit ledger entry; one that no longer matches stops the rebuild with RecordTampered naming
it, before anything is swapped, unless `accept_tampered`.

`check_projection(...)` is steps 1-4 and 6: it never writes live tables (it creates them if
they are missing, as the runner would).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import IntegrityError, ProgrammingError

from hub.ports import SystemClock
from projections.runtime.base import Ticking
from projections.runtime.db import write_transaction
from projections.runtime.derived import stage
from projections.runtime.tracking import apply_batch, ensure_tables, tracked_offsets
from replay.audit.match import refuse_tampered
from replay.compare import Comparison, compare
from replay.errors import LiveKeptMoving, ReplayFailed
from replay.reader import LogReader, lookahead
from replay.scratch import Scratch, open_scratch
from replay.swap import swap_in

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import Engine

    from hub.ports import Clock, EventBus, TopicPartition
    from projections.runtime.base import Projection
    from replay.audit.match import LedgerMatcher

logger = structlog.get_logger()

MAX_ROUNDS = 20  # catch-up rounds before giving up on a live projection that keeps moving
DEFAULT_BATCH = 5_000


@dataclass
class RebuildReport:
    """What a rebuild or check did."""

    projection: str
    records: int = 0
    applied: int = 0
    seconds: float = 0.0
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    comparison: Comparison | None = None
    swapped: bool = False
    rounds: int = 0

    @property
    def rate(self) -> float:
        """Records read and applied per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


def find_projection(projections: Sequence[Projection], name: str) -> Projection:
    """The projection called `name`, or UnknownProjection listing the known ones."""
    from replay.errors import UnknownProjection  # noqa: PLC0415  (only needed on this path)

    for projection in projections:
        if projection.name == name:
            return projection
    known = ", ".join(sorted(p.name for p in projections))
    raise UnknownProjection(f"no projection {name!r}; known: {known}")


async def rebuild(
    bus: EventBus,
    live: Engine,
    projection: Projection,
    *,
    prefix: str = "",
    check: bool = False,
    swap: bool = True,
    batch_size: int = DEFAULT_BATCH,
    clock: Clock | None = None,
    progress: Callable[[int, int], None] | None = None,
    ledger: LedgerMatcher | None = None,
    accept_tampered: bool = False,
) -> RebuildReport:
    """Rebuild `projection` from the log; compare with live when `check`; swap in when `swap`."""
    run = _Rebuild(
        bus,
        live,
        projection,
        prefix=prefix,
        batch_size=batch_size,
        clock=clock or SystemClock(),
        progress=progress,
    )
    run.ledger, run.accept_tampered = ledger, accept_tampered
    return await run.run(check=check, swap=swap)


async def check_projection(
    bus: EventBus,
    live: Engine,
    projection: Projection,
    *,
    prefix: str = "",
    batch_size: int = DEFAULT_BATCH,
    clock: Clock | None = None,
    progress: Callable[[int, int], None] | None = None,
    ledger: LedgerMatcher | None = None,
    accept_tampered: bool = False,
) -> RebuildReport:
    """Rebuild into scratch at the live positions and compare; the live tables are not changed."""
    return await rebuild(
        bus,
        live,
        projection,
        prefix=prefix,
        check=True,
        swap=False,
        batch_size=batch_size,
        clock=clock,
        progress=progress,
        ledger=ledger,
        accept_tampered=accept_tampered,
    )


class _Rebuild:
    def __init__(
        self,
        bus: EventBus,
        live: Engine,
        projection: Projection,
        *,
        prefix: str,
        batch_size: int,
        clock: Clock,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.bus = bus
        self.live = live
        self.projection = projection
        self.topics = [f"{prefix}{t}" for t in projection.topics]
        self.batch_size = batch_size
        self.clock = clock
        self.progress = progress
        self.report = RebuildReport(projection.name)
        self.ledger: LedgerMatcher | None = None
        self.accept_tampered = False

    async def run(self, *, check: bool, swap: bool) -> RebuildReport:
        started = time.perf_counter()
        await asyncio.to_thread(_ensure_live_tables, self.live, self.projection)
        scratch = await asyncio.to_thread(open_scratch, self.live, self.projection.name)
        try:
            await asyncio.to_thread(ensure_tables, scratch.engine, self.projection)
            async with LogReader(self.bus, self.topics, batch_size=self.batch_size) as reader:
                live_positions = await asyncio.to_thread(_tracked, self.live, self.projection.name)
                if check:
                    until, settle = live_positions, False
                else:
                    until, settle = _furthest(await reader.last_offsets(), live_positions), True
                await self._apply(reader, scratch, until, start={}, settle=settle)
                await asyncio.to_thread(self._tick, scratch)
                if check:
                    self.report.comparison = await self._check(reader, scratch)
                if swap:
                    await self._swap(reader, scratch)
        finally:
            await asyncio.to_thread(scratch.drop)
        self.report.seconds = time.perf_counter() - started
        logger.info(
            "projection_rebuilt" if swap else "projection_checked",
            projection=self.projection.name,
            records=self.report.records,
            applied=self.report.applied,
            swapped=self.report.swapped,
            equal=None if self.report.comparison is None else self.report.comparison.equal,
            rounds=self.report.rounds,
            duration_ms=round(self.report.seconds * 1000, 1),
        )
        return self.report

    async def _apply(
        self,
        reader: LogReader,
        scratch: Scratch,
        until: Mapping[TopicPartition, int],
        *,
        start: Mapping[TopicPartition, int],
        settle: bool,
    ) -> None:
        total = self.report.records + sum(max(0, last + 1 - start.get(tp, 0)) for tp, last in until.items())
        if self.progress is not None:
            self.progress(self.report.records, total)
        async for batch in lookahead(reader.read(until, start=start, settle=settle)):
            if self.ledger is not None:
                found = await asyncio.to_thread(self.ledger.check, batch)
                refuse_tampered(found, what="rebuild", accept=self.accept_tampered)
            outcome = await asyncio.to_thread(apply_batch, scratch.engine, self.projection, batch)
            self.report.records += len(batch)
            self.report.applied += outcome.applied
            if self.progress is not None:
                self.progress(self.report.records, max(total, self.report.records))

    def _tick(self, scratch: Scratch) -> None:
        if not isinstance(self.projection, Ticking):
            return
        with write_transaction(scratch.engine) as conn:
            derived = self.projection.tick(conn, self.clock.now())
            if derived:
                stage(conn, self.projection.name, derived)

    async def _catch_up(
        self, reader: LogReader, scratch: Scratch, live: Mapping[TopicPartition, int]
    ) -> None:
        """Apply to the scratch, exactly, whatever the live projection has applied beyond it."""
        mine = await asyncio.to_thread(_tracked, scratch.engine, self.projection.name)
        owed = {tp: offset for tp, offset in live.items() if offset > mine.get(tp, -1)}
        if not owed:
            return
        self.report.rounds += 1
        start = {tp: mine.get(tp, -1) + 1 for tp in owed}
        await self._apply(reader, scratch, owed, start=start, settle=False)
        await asyncio.to_thread(self._tick, scratch)

    async def _check(self, reader: LogReader, scratch: Scratch) -> Comparison:
        for _ in range(MAX_ROUNDS):
            outcome = await asyncio.to_thread(_compare_at_same_positions, self.live, scratch, self.projection)
            if isinstance(outcome, Comparison):
                return outcome
            await self._catch_up(reader, scratch, outcome)
        raise LiveKeptMoving(f"{self.projection.name}: the live projection kept moving; try again")

    async def _swap(self, reader: LogReader, scratch: Scratch) -> None:
        live = await asyncio.to_thread(_tracked, self.live, self.projection.name)
        for _ in range(MAX_ROUNDS):
            await self._catch_up(reader, scratch, live)
            mine = await asyncio.to_thread(_tracked, scratch.engine, self.projection.name)
            ahead = await asyncio.to_thread(swap_in, scratch, self.projection, mine)
            if ahead is None:
                self.report.swapped = True
                self.report.positions = mine
                return
            live = ahead
        raise LiveKeptMoving(f"{self.projection.name}: the live projection kept moving; nothing was swapped")


def _ensure_live_tables(live: Engine, projection: Projection) -> None:
    """Create missing live tables; a runner starting at the same moment may race us to it once."""
    try:
        ensure_tables(live, projection)
    except (IntegrityError, ProgrammingError) as exc:  # PostgreSQL: "already exists" from the other side
        logger.info(
            "live_tables_created_concurrently", projection=projection.name, error=type(exc.orig).__name__
        )
        ensure_tables(live, projection)


def _tracked(engine: Engine, name: str) -> dict[TopicPartition, int]:
    with engine.connect() as conn:
        return tracked_offsets(conn, name)


def _furthest(*positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for mapping in positions:
        for tp, offset in mapping.items():
            out[tp] = max(offset, out.get(tp, -1))
    return out


def _compare_at_same_positions(
    live: Engine, scratch: Scratch, projection: Projection
) -> Comparison | dict[TopicPartition, int]:
    """Compare in one consistent snapshot of the live database, if both sides are at the same offsets.

    Returns the live positions instead when they differ from the scratch's (the live runner
    applied more since): the caller catches up and asks again.
    """
    options = {"isolation_level": "REPEATABLE READ"} if live.dialect.name == "postgresql" else {}
    with live.connect().execution_options(**options) as live_conn, scratch.engine.connect() as mine:
        live_conn.begin()
        live_positions = tracked_offsets(live_conn, projection.name)
        scratch_positions = tracked_offsets(mine, projection.name)
        if live_positions != scratch_positions:
            if any(offset < scratch_positions.get(tp, -1) for tp, offset in live_positions.items()):
                raise ReplayFailed(
                    f"{projection.name}: the live projection went back in the log while being checked "
                    "(was it rebuilt or reset meanwhile?)"
                )
            return live_positions
        return compare(live_conn, mine, projection)
