"""One watcher of the log's partition ends for every idle consumer of an embedded bus in a process.

A consumer whose fetch came back empty used to fetch again after a short pause, each on its own
connection thread: with a consumer per source system and per read model, an idle hub spent most
of its CPU handing those fetches to threads and back. Now an idle consumer registers what it
waits for (its partitions' positions, its group's generation) and the watcher reads the ends of
all of them, and the generations, in one query per pause; it wakes the consumers with something
to read, or whose group moved on. A publish through the same bus wakes it at once; records
appended by another process are seen within IDLE_SLEEP_MAX_S, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

import structlog

from hub.bus import sqlite_log
from hub.errors import BusError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

    from hub.bus.sqlite_thread import SqliteThread

logger = structlog.get_logger()

IDLE_SLEEP_S = 0.02  # first pause between reads while something waits
IDLE_SLEEP_MAX_S = 0.1  # the pause doubles up to this while nothing changes


def _read(
    conn: sqlite3.Connection, pids: list[int], groups: list[str]
) -> tuple[dict[int, int], dict[str, int]]:
    ends = sqlite_log.next_offsets(conn, pids)
    generations = dict(
        conn.execute(
            "SELECT grp, generation FROM bus_groups WHERE grp IN (SELECT value FROM json_each(?))",
            (json.dumps(groups),),
        ).fetchall()
    )
    return ends, generations


class _Waiter:
    __slots__ = ("future", "generation", "group", "positions")

    def __init__(
        self, future: asyncio.Future[None], positions: Mapping[int, int], group: str | None, generation: int
    ) -> None:
        self.future = future
        self.positions = positions
        self.group = group
        self.generation = generation


class EndWatch:
    """Reads partition ends and group generations for the consumers waiting on it (`wait`)."""

    def __init__(self, thread: SqliteThread) -> None:
        self._thread = thread
        self._waiters: set[_Waiter] = set()
        self._task: asyncio.Task[None] | None = None
        self._poke: asyncio.Event | None = None

    async def wait(
        self, positions: Mapping[int, int], timeout_s: float, group: str | None = None, generation: int = -1
    ) -> bool:
        """Return once a partition of `positions` has a record at or past its position, `group`'s
        generation differs from `generation` (True), or `timeout_s` passed (False)."""
        if timeout_s <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), dict(positions), group, generation)
        self._waiters.add(waiter)
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._poke = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="hub-bus-end-watch")
        try:
            done, _ = await asyncio.wait({waiter.future}, timeout=timeout_s)
            return bool(done)
        finally:
            self._waiters.discard(waiter)
            waiter.future.cancel()

    def poke(self) -> None:
        """Something was appended through this process's bus: read at once."""
        if self._poke is not None:
            self._poke.set()

    async def _run(self) -> None:
        pause = IDLE_SLEEP_S
        while self._waiters:
            waiting = list(self._waiters)
            pids = sorted({pid for w in waiting for pid in w.positions})
            groups = sorted({w.group for w in waiting if w.group is not None})
            try:
                await self._thread.open()
                ends, generations = await self._thread.call(_read, pids, groups)
            except BusError as exc:
                # The waiters fall back on their timeouts; their own fetch reports a lasting failure.
                logger.warning("bus_watch_failed", error=str(exc))
                await asyncio.sleep(IDLE_SLEEP_MAX_S)
                continue
            woke = False
            for w in waiting:
                moved = w.group is not None and generations.get(w.group, 0) != w.generation
                if moved or any(ends.get(pid, pos) > pos for pid, pos in w.positions.items()):
                    if not w.future.done():
                        w.future.set_result(None)
                    woke = True
            pause = IDLE_SLEEP_S if woke else min(pause * 2, IDLE_SLEEP_MAX_S)
            poke = self._poke
            if poke is None:
                await asyncio.sleep(pause)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poke.wait(), pause)
            poke.clear()

    async def close(self) -> None:
        task, self._task = self._task, None
        for w in self._waiters:
            w.future.cancel()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._thread.close()
