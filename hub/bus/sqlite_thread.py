"""One SQLite connection driven from its own thread, so blocking SQLite work stays off the event loop.

Each embedded bus (its writer) and each embedded consumer owns one: calls on one connection are
serialised by the single worker thread, while separate connections run in parallel (sqlite3
releases the GIL while SQLite works, and WAL lets readers run beside the writer).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from hub.bus.sqlite_log import open_log
from hub.errors import BusError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

P = ParamSpec("P")
T = TypeVar("T")


class SqliteThread:
    """A connection to the log file plus the one thread allowed to use it."""

    def __init__(self, path: Path, name: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._conn is None:
            self._conn = await self._submit(open_log, self._path)

    async def call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(connection, *args, **kwargs)` on the thread; SQLite errors become BusError."""
        if self._conn is None:
            raise BusError("the embedded bus connection is not open (start() not called, or closed)")
        return await self._submit(fn, self._conn, *args, **kwargs)

    async def _submit(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        except sqlite3.Error as exc:
            raise BusError(f"embedded bus storage failed: {exc}") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._submit(conn.close)
        self._executor.shutdown(wait=False)
