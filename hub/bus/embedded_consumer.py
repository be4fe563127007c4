"""Consumer of the embedded bus: manual assignment or a consumer group over the SQLite log.

Group mode joins through hub.bus.sqlite_groups: assignment is re-evaluated on poll (at least every
heartbeat interval, and soon after the group's generation changes: it is read with a fetch at
most every GENERATION_CHECK_S, not on every fetch) and a background task keeps the member alive
between polls. Positions live in memory; `commit` stores them in the log file.

A poll waiting for data fetches again after IDLE_SLEEP_S, doubling up to IDLE_SLEEP_MAX_S while
nothing comes: an idle consumer costs a few fetches a second, not fifty. With the bus's
hub.bus.sqlite_watch (consumers made by EmbeddedBus) it fetches again only when one read for
every waiting consumer of the process shows it has records or its group moved on, or when its
heartbeat is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog

from hub.bus import sqlite_groups, sqlite_log
from hub.errors import BusError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping, Sequence

    from hub.bus.sqlite_thread import SqliteThread
    from hub.bus.sqlite_watch import EndWatch
    from hub.ports import BusRecord, TopicPartition

logger = structlog.get_logger()

IDLE_SLEEP_S = 0.02  # first pause between empty fetches while poll() waits for data
IDLE_SLEEP_MAX_S = 0.1  # the pause doubles up to this while fetches stay empty
GENERATION_CHECK_S = 0.1  # how stale the cached group generation may get between reads
PENDING_FACTOR = 5  # heartbeat this many times faster while waiting for a partition to be released


def _poll_once(
    conn: sqlite3.Connection,
    group: str | None,
    known_generation: int,
    cursors: Sequence[sqlite_log.Cursor],
    limit: int,
) -> tuple[int, list[BusRecord]]:
    """Fetch, unless the group moved on: then answer the new generation and nothing (rebalance first).

    `group` None: no generation check (manual assignment, or the cached one is fresh enough).
    """
    if group is not None:
        current = sqlite_groups.generation(conn, group)
        if current != known_generation:
            return current, []
    return known_generation, sqlite_log.read_batch(conn, cursors, limit)


def _seek_times(conn: sqlite3.Connection, pids: Sequence[int], timestamp_ms: int) -> dict[int, int]:
    ends = sqlite_log.next_offsets(conn, pids)
    found = {pid: sqlite_log.offset_for_timestamp(conn, pid, timestamp_ms) for pid in pids}
    return {pid: ends[pid] if offset is None else offset for pid, offset in found.items()}


class EmbeddedConsumer:
    """hub.ports.Consumer over the SQLite log. Create it with `EmbeddedBus.consumer`."""

    def __init__(
        self,
        thread: SqliteThread,
        topics: Sequence[str],
        *,
        group: str | None,
        from_beginning: bool,
        member_id: str,
        heartbeat_interval_s: float,
        session_timeout_s: float,
        watch: EndWatch | None = None,
    ) -> None:
        self.group = group
        self._watch = watch
        self.member_id = member_id
        self._thread = thread
        self._topics = tuple(dict.fromkeys(topics))
        self._from_beginning = from_beginning
        self._heartbeat_interval_s = heartbeat_interval_s
        self._session_timeout_ms = int(session_timeout_s * 1000)
        self._positions: dict[int, int] = {}  # pid -> next offset to read
        self._tp_of: dict[int, TopicPartition] = {}
        self._pid_of: dict[TopicPartition, int] = {}
        self._generation = -1
        self._pending = False
        self._last_heartbeat = 0.0
        self._generation_read = 0.0  # monotonic time the generation was last read
        self._rotation = 0
        self._pause = IDLE_SLEEP_S  # the current pause between empty fetches (without a watcher)
        self._keep_alive: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        await self._thread.open()
        if self.group is None:
            parts = await self._thread.call(sqlite_log.partitions_of, self._topics)
            missing = set(self._topics) - {topic for _, topic, _, _ in parts}
            if missing:
                raise BusError(f"unknown topic(s) {sorted(missing)}: create them with ensure_topics first")
            for pid, topic, partition, nxt in parts:
                self._tp_of[pid] = (topic, partition)
                self._pid_of[topic, partition] = pid
                self._positions[pid] = 0 if self._from_beginning else nxt
        else:
            await self._rebalance(self.group)
            self._keep_alive = asyncio.create_task(self._keep_member_alive(self.group))

    # --- group membership -----------------------------------------------------------------------

    async def _rebalance(self, group: str) -> None:
        own = await self._thread.call(
            sqlite_groups.heartbeat, group, self.member_id, self._topics, self._session_timeout_ms
        )
        self._last_heartbeat = time.monotonic()
        self._generation = own.generation
        self._generation_read = self._last_heartbeat
        self._pending = own.pending
        positions: dict[int, int] = {}
        for pid in own.owned:
            if pid in self._positions and not own.rejoined:
                positions[pid] = self._positions[pid]
            elif pid in own.committed:
                positions[pid] = own.committed[pid]
            else:
                positions[pid] = 0 if self._from_beginning else own.ends[pid]
        if set(positions) != set(self._positions):
            logger.info(
                "group_assignment_changed", group=group, member=self.member_id, partitions=len(positions)
            )
        self._positions = positions
        self._tp_of = dict(own.owned)
        self._pid_of = {tp: pid for pid, tp in own.owned.items()}

    def _heartbeat_due_in(self) -> float:
        interval = self._heartbeat_interval_s / (PENDING_FACTOR if self._pending else 1)
        return self._last_heartbeat + interval - time.monotonic()

    async def _maybe_rebalance(self, group: str) -> None:
        if self._heartbeat_due_in() <= 0:
            await self._rebalance(group)

    async def _keep_member_alive(self, group: str) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_interval_s)
            if time.monotonic() - self._last_heartbeat < self._heartbeat_interval_s:
                continue
            try:
                await self._thread.call(sqlite_groups.touch, group, self.member_id)
            except BusError as exc:
                # The next poll heartbeats again and raises if the store is really gone.
                logger.warning("group_heartbeat_failed", group=group, member=self.member_id, error=str(exc))

    # --- reading --------------------------------------------------------------------------------

    def _cursors(self) -> list[sqlite_log.Cursor]:
        pids = sorted(self._positions)
        if not pids:
            return []
        # Start at a different partition each poll, so one busy partition cannot starve the rest.
        self._rotation = (self._rotation + 1) % len(pids)
        ordered = pids[self._rotation :] + pids[: self._rotation]
        return [(pid, *self._tp_of[pid], self._positions[pid]) for pid in ordered]

    async def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[BusRecord]:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self._check_open()
        deadline = time.monotonic() + timeout_s
        self._pause = IDLE_SLEEP_S
        while True:
            check: str | None = None
            if self.group is not None:
                await self._maybe_rebalance(self.group)
                if time.monotonic() - self._generation_read >= GENERATION_CHECK_S:
                    check = self.group
            generation, records = await self._thread.call(
                _poll_once, check, self._generation, self._cursors(), max_records
            )
            if check is not None:
                self._generation_read = time.monotonic()
                if generation != self._generation:
                    await self._rebalance(check)
                    continue
            if records:
                pid_of = self._pid_of
                for rec in records:
                    self._positions[pid_of[rec.topic, rec.partition]] = rec.offset + 1
                return records
            if not await self._idle(deadline):
                return []

    async def _idle(self, deadline: float) -> bool:
        """Wait before fetching again; False when the poll should end with nothing."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if self._watch is None:
            await asyncio.sleep(min(self._pause, remaining))
            self._pause = min(self._pause * 2, IDLE_SLEEP_MAX_S)
            return True
        # Woken when there is something to read or the group moved on; at the latest when the
        # heartbeat is due (a full heartbeat also expires the group's silent members). Not woken
        # by the deadline: the watcher read nothing new for us, no need to fetch again.
        due = remaining if self.group is None else min(remaining, self._heartbeat_due_in())
        woken = await self._watch.wait(self._positions, max(due, 0.0), self.group, self._generation)
        return woken or time.monotonic() < deadline

    def _pid(self, topic: str, partition: int) -> int:
        pid = self._pid_of.get((topic, partition))
        if pid is None or pid not in self._positions:
            raise BusError(f"partition {topic}[{partition}] is not assigned to this consumer")
        return pid

    # --- offsets --------------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        self._check_open()
        if self.group is None:
            raise BusError("commit needs a consumer group; this consumer is manually assigned")
        by_pid = (
            dict(self._positions) if offsets is None else {self._pid(*tp): off for tp, off in offsets.items()}
        )
        if by_pid:
            await self._thread.call(sqlite_groups.commit, self.group, self.member_id, by_pid)

    async def committed(self, tp: TopicPartition) -> int | None:
        self._check_open()
        if self.group is None:
            return None
        return await self._thread.call(sqlite_groups.committed, self.group, tp)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check_open()
        if offset < 0:
            raise ValueError(f"offsets are >= 0, got {offset}")
        self._positions[self._pid(*tp)] = offset

    async def seek_to_beginning(self) -> None:
        # The embedded log is never truncated, so every partition begins at offset 0.
        self._positions = dict.fromkeys(self._positions, 0)

    async def seek_to_timestamp(self, timestamp_ms: int) -> None:
        self._check_open()
        found = await self._thread.call(_seek_times, sorted(self._positions), timestamp_ms)
        self._positions.update(found)

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._tp_of[pid] for pid in self._positions)

    async def lag(self) -> dict[TopicPartition, int]:
        self._check_open()
        ends = await self._thread.call(sqlite_log.next_offsets, sorted(self._positions))
        return {self._tp_of[pid]: max(0, ends[pid] - pos) for pid, pos in self._positions.items()}

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("consumer is closed")

    async def close(self) -> None:
        """Leave the group (its partitions move to the other members at once) and release the file."""
        if self._closed:
            return
        self._closed = True
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep_alive
        try:
            if self.group is not None and self._generation >= 0:  # joined
                await self._thread.call(sqlite_groups.leave, self.group, self.member_id)
        finally:
            await self._thread.close()
