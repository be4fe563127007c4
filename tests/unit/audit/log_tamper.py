"""Tampering with the embedded bus's log file directly, as someone with write access to bus.db could."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from hub.bus.sqlite_log import OFFSET_BITS, decode_headers, encode_headers

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class LogFile:
    """One bus.db, opened with plain sqlite3 (the hub is not involved)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _pos(self, conn: sqlite3.Connection, topic: str, partition: int, offset: int) -> int:
        (pid,) = conn.execute(
            "SELECT pid FROM bus_partitions WHERE topic = ? AND partition = ?", (topic, partition)
        ).fetchone()
        return int(pid) << OFFSET_BITS | offset

    def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = work(conn)
            conn.execute("COMMIT")
            return result
        finally:
            conn.close()

    def value(self, topic: str, partition: int, offset: int) -> bytes:
        def read(conn: sqlite3.Connection) -> bytes:
            pos = self._pos(conn, topic, partition, offset)
            return bytes(conn.execute("SELECT value FROM bus_records WHERE pos = ?", (pos,)).fetchone()[0])

        return bytes(self._run(read))

    def edit_value(self, topic: str, partition: int, offset: int, edit: Callable[[bytes], bytes]) -> None:
        def work(conn: sqlite3.Connection) -> None:
            pos = self._pos(conn, topic, partition, offset)
            (value,) = conn.execute("SELECT value FROM bus_records WHERE pos = ?", (pos,)).fetchone()
            changed = edit(bytes(value))
            assert changed != bytes(value)
            conn.execute("UPDATE bus_records SET value = ? WHERE pos = ?", (changed, pos))

        self._run(work)

    def edit_header(self, topic: str, partition: int, offset: int, name: str, value: bytes) -> None:
        def work(conn: sqlite3.Connection) -> None:
            pos = self._pos(conn, topic, partition, offset)
            (blob,) = conn.execute("SELECT headers FROM bus_records WHERE pos = ?", (pos,)).fetchone()
            headers = tuple((k, value if k == name else v) for k, v in decode_headers(blob))
            conn.execute("UPDATE bus_records SET headers = ? WHERE pos = ?", (encode_headers(headers), pos))

        self._run(work)

    def delete(self, topic: str, partition: int, offset: int) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM bus_records WHERE pos = ?", (self._pos(conn, topic, partition, offset),)
            )

        self._run(work)

    def insert(self, topic: str, partition: int, offset: int, value: bytes, key: str) -> None:
        """Put a record at `offset`, moving that record and every later one up by one offset."""

        def work(conn: sqlite3.Connection) -> None:
            pos = self._pos(conn, topic, partition, offset)
            end = self._pos(conn, topic, partition, (1 << OFFSET_BITS) - 1)
            # Through negative positions: the primary key forbids two records at one place mid-update.
            conn.execute("UPDATE bus_records SET pos = -(pos + 1) WHERE pos >= ? AND pos < ?", (pos, end))
            conn.execute("UPDATE bus_records SET pos = -pos WHERE pos < 0")
            conn.execute(
                "INSERT INTO bus_records (pos, ts_ms, key, value, headers) VALUES (?, 0, ?, ?, NULL)",
                (pos, key, value),
            )
            conn.execute(
                "UPDATE bus_partitions SET next_offset = next_offset + 1 WHERE topic = ? AND partition = ?",
                (topic, partition),
            )

        self._run(work)
