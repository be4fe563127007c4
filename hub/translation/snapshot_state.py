"""Where the snapshot differ keeps what it has seen: per row a content hash (and, for types whose
correction names the previous values, the previous payload), and the events of noted units.

Two stores behind one small port: SQLite in the node's archive file (one node), PostgreSQL in
the archive's database when HUB_ARCHIVE_URL is set, so every node of a site diffs a re-export
against the same state (a ledger first seen by one node and re-exported to another yields
corrections, not whole copies). The diffing itself is hub.translation.snapshots.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import text

from hub.pg import create_schema, pg_engine
from hub.sqlite import connect_durable

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

Key = tuple[str, str]  # (subject, event type)
StateRow = tuple[str, str, str, str, str]  # system, subject, event type, content hash, kept payload
NotedRow = tuple[str, str, str, str]  # system, event id, content hash, payload
Row = TypeVar("Row", StateRow, NotedRow)

_SQLITE_IN = 400  # bound parameters per IN list (SQLite's limit is per statement)


class SnapshotStore(Protocol):
    """The differ's state: read hashes, read the previous payloads of changed rows, read noted
    events, and write state rows and noted events together."""

    def hashes(self, system: str, keys: Sequence[Key]) -> dict[Key, str]: ...
    def payloads(self, system: str, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]: ...
    def noted(self, system: str, event_ids: Sequence[str]) -> dict[str, tuple[str, str]]: ...
    def commit(self, state: Sequence[StateRow], noted: Sequence[NotedRow]) -> None: ...
    def close(self) -> None: ...


def _kept_payloads(rows: Iterable[tuple[str, str, str]], keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
    wanted = set(keys)
    return {
        (subject, etype): json.loads(payload)
        for subject, etype, payload in rows
        if (subject, etype) in wanted and payload
    }


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot_state (
    system TEXT NOT NULL,
    subject TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (system, subject, event_type)
);
CREATE TABLE IF NOT EXISTS noted_state (
    system TEXT NOT NULL,
    event_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (system, event_id)
);
"""


class SqliteSnapshotStore:
    """One node's state, in its archive file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = connect_durable(path)
        self._conn.executescript(SQLITE_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def hashes(self, system: str, keys: Sequence[Key]) -> dict[Key, str]:
        return {(s, t): h for s, t, h in self._select(system, keys, "content_hash")}

    def payloads(self, system: str, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        return _kept_payloads(self._select(system, keys, "payload"), keys)

    def _select(self, system: str, keys: Sequence[Key], column: str) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        subjects = sorted({s for s, _ in keys})
        with self._lock:
            for i in range(0, len(subjects), _SQLITE_IN):
                chunk = subjects[i : i + _SQLITE_IN]
                rows.extend(
                    self._conn.execute(
                        f"SELECT subject, event_type, {column} FROM snapshot_state"  # nosec B608: column is our constant; values are bound
                        f" WHERE system = ? AND subject IN ({','.join('?' * len(chunk))})",
                        (system, *chunk),
                    )
                )
        return rows

    def noted(self, system: str, event_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        with self._lock:
            for i in range(0, len(event_ids), _SQLITE_IN):
                chunk = event_ids[i : i + _SQLITE_IN]
                for event_id, digest, payload in self._conn.execute(
                    "SELECT event_id, content_hash, payload FROM noted_state"  # nosec B608: placeholders only
                    f" WHERE system = ? AND event_id IN ({','.join('?' * len(chunk))})",
                    (system, *chunk),
                ):
                    out[event_id] = (digest, payload)
        return out

    def commit(self, state: Sequence[StateRow], noted: Sequence[NotedRow]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT INTO snapshot_state (system, subject, event_type, content_hash, payload)"
                " VALUES (?,?,?,?,?) ON CONFLICT (system, subject, event_type) DO UPDATE SET"
                " content_hash=excluded.content_hash, payload=excluded.payload",
                state,
            )
            self._conn.executemany(
                "INSERT INTO noted_state (system, event_id, content_hash, payload) VALUES (?,?,?,?)"
                " ON CONFLICT (system, event_id) DO UPDATE SET"
                " content_hash=excluded.content_hash, payload=excluded.payload",
                noted,
            )
            self._conn.execute("COMMIT")


PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS hub_snapshot_state (
    system TEXT NOT NULL,
    subject TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (system, subject, event_type)
);
CREATE TABLE IF NOT EXISTS hub_noted_state (
    system TEXT NOT NULL,
    event_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (system, event_id)
);
"""


def _last_per_key(rows: Sequence[Row], width: int) -> list[Row]:
    """One row per key (its first `width` fields), the last one given, in key order.

    One INSERT cannot update a row twice (PostgreSQL refuses), and the last row of a key is what
    writing them one by one would leave. Key order: two nodes committing overlapping keys lock
    them in the same order, so neither waits on the other in a cycle.
    """
    last = {row[:width]: row for row in rows}
    return [last[k] for k in sorted(last)]


def _columns(names: Sequence[str], rows: Sequence[tuple[str, ...]]) -> dict[str, list[str]]:
    """Rows as one array per column, for `unnest`: one statement and one round trip per commit."""
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


class PostgresSnapshotStore:
    """Every node's state, in the archive's PostgreSQL database (HUB_ARCHIVE_URL)."""

    def __init__(self, url: str) -> None:
        self._engine = pg_engine(url)
        create_schema(self._engine, PG_SCHEMA)

    def close(self) -> None:
        self._engine.dispose()

    def _read(self, sql: str, params: dict[str, Any]) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def hashes(self, system: str, keys: Sequence[Key]) -> dict[Key, str]:
        return {(s, t): h for s, t, h in self._select(system, keys, "content_hash")}

    def payloads(self, system: str, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        return _kept_payloads(self._select(system, keys, "payload"), keys)

    def _select(self, system: str, keys: Sequence[Key], column: str) -> list[tuple[str, str, str]]:
        if not keys:
            return []
        rows = self._read(
            f"SELECT subject, event_type, {column} FROM hub_snapshot_state"  # nosec B608: column is our constant; values are bound
            " WHERE system = :system AND subject = ANY(:subjects)",
            {"system": system, "subjects": sorted({s for s, _ in keys})},
        )
        return [(s, t, v) for s, t, v in rows]

    def noted(self, system: str, event_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        if not event_ids:
            return {}
        rows = self._read(
            "SELECT event_id, content_hash, payload FROM hub_noted_state"
            " WHERE system = :system AND event_id = ANY(:ids)",
            {"system": system, "ids": list(event_ids)},
        )
        return {event_id: (digest, payload) for event_id, digest, payload in rows}

    def commit(self, state: Sequence[StateRow], noted: Sequence[NotedRow]) -> None:
        state, noted = _last_per_key(state, 3), _last_per_key(noted, 2)
        with self._engine.begin() as conn:
            if state:
                conn.execute(
                    text(
                        "INSERT INTO hub_snapshot_state (system, subject, event_type, content_hash, payload)"
                        " SELECT * FROM unnest(CAST(:system AS text[]), CAST(:subject AS text[]),"
                        " CAST(:etype AS text[]), CAST(:digest AS text[]), CAST(:payload AS text[]))"
                        " ON CONFLICT (system, subject, event_type) DO UPDATE SET"
                        " content_hash = excluded.content_hash, payload = excluded.payload"
                    ),
                    _columns(("system", "subject", "etype", "digest", "payload"), state),
                )
            if noted:
                conn.execute(
                    text(
                        "INSERT INTO hub_noted_state (system, event_id, content_hash, payload)"
                        " SELECT * FROM unnest(CAST(:system AS text[]), CAST(:event_id AS text[]),"
                        " CAST(:digest AS text[]), CAST(:payload AS text[]))"
                        " ON CONFLICT (system, event_id) DO UPDATE SET"
                        " content_hash = excluded.content_hash, payload = excluded.payload"
                    ),
                    _columns(("system", "event_id", "digest", "payload"), noted),
                )


def open_snapshot_store(path: Path, archive_url: str | None) -> SnapshotStore:
    """PostgreSQL beside the shared archive when there is one, else SQLite in the node's archive file."""
    return PostgresSnapshotStore(archive_url) if archive_url else SqliteSnapshotStore(path)
