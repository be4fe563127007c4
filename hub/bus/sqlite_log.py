"""The embedded bus's storage: an append-only, partitioned log in one SQLite file.

Blocking functions over a `sqlite3.Connection`; hub.bus.embedded runs them on a dedicated
thread. Several processes may open the same file: every write is a `BEGIN IMMEDIATE`
transaction, so offsets are handed out under SQLite's single-writer lock and never collide.

Layout (schema version 1):

- `bus_topics`: name, partition count, the broker-style configs (recorded, not enforced: the
  embedded log keeps every record forever and does not compact).
- `bus_partitions`: one row per (topic, partition) with a small integer id `pid` and the next
  offset to hand out.
- `bus_records`: the log. Its rowid is `pid << 40 | offset`, so one integer primary key keeps a
  partition's records contiguous and in offset order, an append is a b-tree append, and a fetch
  is a range scan. 2**40 offsets per partition is far more than a hospital writes.
- consumer-group tables: see hub.bus.sqlite_groups.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hub.errors import BusError, PublishFailed
from hub.ports import BusRecord, Headers, OutRecord

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from hub.bus.partitioner import Partitioner

OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    configs TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_partitions (
    pid INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL DEFAULT 0,
    UNIQUE (topic, partition)
);
CREATE TABLE IF NOT EXISTS bus_records (
    pos INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    key TEXT,
    value BLOB NOT NULL,
    headers BLOB
);
CREATE TABLE IF NOT EXISTS bus_groups (
    grp TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_group_members (
    grp TEXT NOT NULL,
    member TEXT NOT NULL,
    topics TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    process TEXT,
    PRIMARY KEY (grp, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_group_claims (
    grp TEXT NOT NULL,
    pid INTEGER NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (grp, pid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_group_offsets (
    grp TEXT NOT NULL,
    pid INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    committed_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, pid)
) WITHOUT ROWID;
"""

_HEADER = struct.Struct(">HI")
Cursor = tuple[
    int, str, int, int
]  # (pid, topic, partition, next offset to read)  # name length, value length


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def position(pid: int, offset: int) -> int:
    """The rowid of `offset` in partition `pid`."""
    return (pid << OFFSET_BITS) | offset


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` ... `COMMIT`: takes the writer lock up front so concurrent appenders queue."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_version(path: Path, version: int) -> None:
    if version not in {0, SCHEMA_VERSION}:
        raise BusError(f"{path} holds bus schema version {version}; this hub reads {SCHEMA_VERSION}")


# Columns added after a table first shipped (nullable, so older rows and older readers still work).
_ADDED_COLUMNS = (("bus_group_members", "process", "TEXT"),)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, kind in _ADDED_COLUMNS:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def open_log(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the log file: WAL, synchronous=FULL, schema in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsync'd before it returns, so a publish is durable when it returns.
        conn.execute("PRAGMA synchronous=FULL")
        with write_transaction(conn):
            _check_version(path, conn.execute("PRAGMA user_version").fetchone()[0])
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            _add_missing_columns(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def encode_headers(headers: Headers) -> bytes | None:
    if not headers:
        return None
    parts: list[bytes] = []
    for name, value in headers:
        raw_name = name.encode("utf-8")
        parts += (_HEADER.pack(len(raw_name), len(value)), raw_name, bytes(value))
    return b"".join(parts)


def decode_headers(blob: bytes | None) -> Headers:
    if not blob:
        return ()
    out: list[tuple[str, bytes]] = []
    at = 0
    while at < len(blob):
        name_len, value_len = _HEADER.unpack_from(blob, at)
        at += _HEADER.size
        name = blob[at : at + name_len].decode("utf-8")
        at += name_len
        out.append((name, blob[at : at + value_len]))
        at += value_len
    return tuple(out)


# --- topics -------------------------------------------------------------------------------------


def create_topics(conn: sqlite3.Connection, wanted: Sequence[tuple[str, int, dict[str, str]]]) -> list[str]:
    """Create the topics that do not exist yet and return their names; existing ones are left as they are."""
    created: list[str] = []
    with write_transaction(conn):
        for name, partitions, configs in wanted:
            cur = conn.execute(
                "INSERT INTO bus_topics (name, partitions, configs, created_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, partitions, json.dumps(configs, sort_keys=True), now_ms()),
            )
            if cur.rowcount:
                conn.executemany(
                    "INSERT INTO bus_partitions (topic, partition) VALUES (?, ?)",
                    [(name, p) for p in range(partitions)],
                )
                created.append(name)
    return created


def list_topics(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT name, partitions FROM bus_topics ORDER BY name").fetchall())


def partitions_of(conn: sqlite3.Connection, topics: Sequence[str]) -> list[tuple[int, str, int, int]]:
    """(pid, topic, partition, next_offset) of every partition of `topics` that exists."""
    return conn.execute(
        "SELECT pid, topic, partition, next_offset FROM bus_partitions "
        "WHERE topic IN (SELECT value FROM json_each(?)) ORDER BY topic, partition",
        (json.dumps(list(topics)),),
    ).fetchall()


def end_offsets(conn: sqlite3.Connection, topic: str) -> dict[int, int]:
    rows = conn.execute("SELECT partition, next_offset FROM bus_partitions WHERE topic = ?", (topic,))
    result = dict(rows.fetchall())
    if not result:
        raise BusError(f"unknown topic {topic!r}")
    return result


def next_offsets(conn: sqlite3.Connection, pids: Sequence[int]) -> dict[int, int]:
    rows = conn.execute(
        "SELECT pid, next_offset FROM bus_partitions WHERE pid IN (SELECT value FROM json_each(?))",
        (json.dumps(list(pids)),),
    )
    return dict(rows.fetchall())


# --- records ------------------------------------------------------------------------------------


def append(
    conn: sqlite3.Connection, partitioner: Partitioner, topic: str, records: Sequence[OutRecord]
) -> list[tuple[int, int]]:
    """Append `records` to `topic` in one durable transaction; return (partition, offset) per record."""
    default_ts = now_ms()
    with write_transaction(conn):
        rows = conn.execute(
            "SELECT partition, pid, next_offset FROM bus_partitions WHERE topic = ? ORDER BY partition",
            (topic,),
        ).fetchall()
        if not rows:
            raise PublishFailed(f"unknown topic {topic!r}: create it with ensure_topics first")
        pids = [pid for _, pid, _ in rows]
        nexts = [nxt for _, _, nxt in rows]
        count = len(rows)
        placed: list[tuple[int, int]] = []
        values: list[tuple[int, int, str | None, bytes, bytes | None]] = []
        for rec in records:
            partition = partitioner.partition(topic, rec.key, count)
            offset = nexts[partition]
            nexts[partition] = offset + 1
            placed.append((partition, offset))
            ts = default_ts if rec.timestamp_ms is None else rec.timestamp_ms
            values.append(
                (position(pids[partition], offset), ts, rec.key, rec.value, encode_headers(rec.headers))
            )
        conn.executemany(
            "INSERT INTO bus_records (pos, ts_ms, key, value, headers) VALUES (?, ?, ?, ?, ?)", values
        )
        touched = {p for p, _ in placed}
        conn.executemany(
            "UPDATE bus_partitions SET next_offset = ? WHERE pid = ?", [(nexts[p], pids[p]) for p in touched]
        )
    return placed


def fetch(conn: sqlite3.Connection, cursor: Cursor, end: int, limit: int) -> list[BusRecord]:
    """Records of the cursor's partition with offsets in [start, end), at most `limit`, in offset order."""
    pid, topic, partition, start = cursor
    rows = conn.execute(
        "SELECT pos, ts_ms, key, value, headers FROM bus_records "
        "WHERE pos >= ? AND pos < ? ORDER BY pos LIMIT ?",
        (position(pid, start), position(pid, end), limit),
    )
    new = tuple.__new__  # BusRecord's fields in order, without its Python-level __new__ (half the cost)
    return [
        new(BusRecord, (topic, partition, pos & OFFSET_MASK, key, value, decode_headers(headers), ts))
        for pos, ts, key, value, headers in rows
    ]


def offset_for_timestamp(conn: sqlite3.Connection, pid: int, timestamp_ms: int) -> int | None:
    """The first offset of partition `pid` whose timestamp is >= `timestamp_ms`, or None.

    A scan of the partition (no time index): seeking by time is a replay-time operation, and an
    index would tax every append.
    """
    row = conn.execute(
        "SELECT min(pos) FROM bus_records WHERE pos >= ? AND pos < ? AND ts_ms >= ?",
        (position(pid, 0), position(pid + 1, 0), timestamp_ms),
    ).fetchone()
    return None if row[0] is None else int(row[0]) & OFFSET_MASK


def read_batch(
    conn: sqlite3.Connection, cursors: Sequence[tuple[int, str, int, int]], limit: int
) -> list[BusRecord]:
    """Up to `limit` records from the partitions of `cursors`, served in the order given."""
    if not cursors:
        return []
    ends = next_offsets(conn, [c[0] for c in cursors])
    out: list[BusRecord] = []
    for pid, topic, partition, start in cursors:
        end = ends.get(pid, start)
        if start < end:
            out += fetch(conn, (pid, topic, partition, start), end, limit - len(out))
            if len(out) >= limit:
                break
    return out
