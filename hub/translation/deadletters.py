"""Dead letters: units that could not be translated, with where and why, until a retry lands them.

Stored beside the raw archive: in its SQLite file, or in PostgreSQL when HUB_ARCHIVE_URL puts
the archive there, so every node of a site sees the same ones (open ones are what `hub dlq list`
shows). Published to `dlq.<system>.v1` for anyone watching. A dead letter's id is deterministic
(raw ref + position), so translating the same message again updates the same dead letter
instead of adding one.

A letter's `kind` is `failure` (the unit was not applied) or `note` (the unit was applied with a
field unknown, e.g. a department code the mapping does not know). Counts and listings that mean
"what failed" (open dead letters, `/dlq`'s total, `hub dlq list`, health) take failures only;
notes are listed with `kind="note"`. A retry takes the messages of both.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import text

from hub.pg import create_schema, pg_engine
from hub.ports import OutRecord
from hub.sqlite import connect_durable
from schemas.records import DeadLetterRecord, Failure

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    dead_letter_id TEXT PRIMARY KEY,
    raw_ref TEXT NOT NULL,
    system TEXT NOT NULL,
    message_id TEXT NOT NULL,
    position TEXT NOT NULL,
    reason TEXT NOT NULL,
    code TEXT NOT NULL,
    location TEXT NOT NULL,
    excerpt TEXT,
    adapter_version TEXT NOT NULL,
    mapping_version TEXT,
    failed_at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'failure',
    attempts INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_at TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_open ON dead_letters (status, system);
CREATE INDEX IF NOT EXISTS dead_letters_raw ON dead_letters (raw_ref);
"""


def dead_letter_id_for(raw_ref: str, position: str) -> str:
    return str(uuid5(NAMESPACE_URL, f"hub:dlq:{raw_ref}#{position}"))


class DeadLetter(DeadLetterRecord):
    """A dead letter as the hub keeps it: the wire record, plus the unit's excerpt (for people
    fixing a mapping; never published), how often it failed and whether it is still open."""

    excerpt: dict[str, str] | None = None
    attempts: int = 1
    status: str = "open"

    @classmethod
    def for_failure(
        cls,
        failure: Failure,
        *,
        raw_ref: str,
        system: str,
        message_id: str,
        adapter_version: str,
        mapping_version: str | None,
        failed_at: datetime,
        kind: Literal["failure", "note"] = "failure",
    ) -> DeadLetter:
        """The dead letter of one failed (or, `kind="note"`, noted) unit of the message `raw_ref`."""
        return cls.of(
            failure,
            dead_letter_id=dead_letter_id_for(raw_ref, failure.position),
            raw_ref=raw_ref,
            system=system,
            message_id=message_id,
            adapter_version=adapter_version,
            mapping_version=mapping_version,
            failed_at=failed_at,
            kind=kind,
        ).model_copy(update={"excerpt": failure.excerpt})

    def wire(self) -> DeadLetterRecord:
        """The record published on dlq.<system>.v1 (no excerpt: it may hold patient data)."""
        return DeadLetterRecord.model_validate(self.model_dump(include=_WIRE_FIELDS))

    def as_record(self) -> dict[str, Any]:
        """The published record as JSON-ready values."""
        return self.wire().model_dump(mode="json")


_WIRE_FIELDS = set(DeadLetterRecord.model_fields)


def dead_letter_out_record(letter: DeadLetter) -> OutRecord:
    """How a dead letter goes on dlq.<system>.v1: keyed by the source message id."""
    return OutRecord(
        key=letter.message_id,
        # The wire record's fields serialised from the letter itself: the bytes of
        # `letter.wire().model_dump_json()` without building and validating a second model (a
        # ledger's noted rows make many letters).
        value=letter.__pydantic_serializer__.to_json(letter, include=_WIRE_FIELDS),
        timestamp_ms=int(letter.failed_at.timestamp() * 1000),
    )


_COLS = (
    "dead_letter_id, raw_ref, system, message_id, position, reason, code, location, excerpt, adapter_version,"
    " mapping_version, failed_at, kind, attempts, status"
)


def _from_row(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=row[0],
        raw_ref=row[1],
        system=row[2],
        message_id=row[3],
        position=row[4],
        reason=row[5],
        code=row[6],
        location=json.loads(row[7]),
        excerpt=json.loads(row[8]) if row[8] else None,
        adapter_version=row[9],
        mapping_version=row[10],
        failed_at=datetime.fromisoformat(row[11]),
        kind=row[12],
        attempts=row[13],
        status=row[14],
    )


class DeadLetterBook(Protocol):
    """Where dead letters are kept: `DeadLetterStore` (SQLite) or `PostgresDeadLetterStore`."""

    async def record(self, letters: Sequence[DeadLetter]) -> None: ...
    async def resolve_others(self, raw_ref: str, still_failing: Sequence[str]) -> int: ...
    async def resolve_others_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> int: ...
    async def query(
        self,
        *,
        status: str | None = "open",
        system: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        raw_ref: str | None = None,
        kind: str | None = "failure",
    ) -> list[DeadLetter]: ...
    async def count(
        self, *, status: str | None = "open", system: str | None = None, kind: str | None = "failure"
    ) -> int: ...
    async def open_raw_refs(self, system: str | None = None) -> list[str]: ...
    async def counts(self) -> dict[str, dict[str, int]]: ...
    async def reasons(self, *, limit: int = 10) -> list[tuple[str, str, int]]: ...
    def close(self) -> None: ...


def _row_values(d: DeadLetter) -> tuple[Any, ...]:
    return (
        d.dead_letter_id,
        d.raw_ref,
        d.system,
        d.message_id,
        d.position,
        d.reason,
        d.code,
        json.dumps(d.location.as_dict(), ensure_ascii=False),
        json.dumps(d.excerpt, ensure_ascii=False) if d.excerpt else None,
        d.adapter_version,
        d.mapping_version,
        d.failed_at.isoformat(),
        d.kind,
    )


class DeadLetterStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = connect_durable(path)
        if "kind" not in {r[1] for r in self._conn.execute("PRAGMA table_info(dead_letters)")} and (
            self._conn.execute("SELECT 1 FROM sqlite_master WHERE name='dead_letters'").fetchone()
        ):  # a store from before notes: every letter in it is a failure
            self._conn.execute("ALTER TABLE dead_letters ADD COLUMN kind TEXT NOT NULL DEFAULT 'failure'")
        self._conn.executescript(SCHEMA)

    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def record(self, letters: Sequence[DeadLetter]) -> None:
        """Insert new dead letters; a known one is re-opened with the new reason and one more attempt."""
        rows = [_row_values(d) for d in letters]

        def write() -> None:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                f"INSERT INTO dead_letters ({_COLS.rsplit(', attempts', 1)[0]})"  # nosec B608: column lists are our constants; values are bound
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (dead_letter_id) DO UPDATE SET reason=excluded.reason, code=excluded.code,"
                " kind=excluded.kind,"
                " location=excluded.location, excerpt=excluded.excerpt,"
                " adapter_version=excluded.adapter_version,"
                " mapping_version=excluded.mapping_version, failed_at=excluded.failed_at,"
                " attempts = CASE WHEN dead_letters.mapping_version IS excluded.mapping_version"
                "   AND dead_letters.status = 'open' THEN dead_letters.attempts"
                " ELSE dead_letters.attempts + 1 END,"
                " status='open', resolved_at=NULL",
                rows,
            )
            self._conn.execute("COMMIT")

        await self._run(write)

    async def resolve_others(self, raw_ref: str, still_failing: Sequence[str]) -> int:
        """Mark open dead letters of `raw_ref` whose position no longer fails as resolved."""
        return await self.resolve_others_many([(raw_ref, still_failing)])

    async def resolve_others_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> int:
        """`resolve_others` for several messages (a translation batch) in one call on the store's thread."""
        if not items:
            return 0
        now = datetime.now(UTC).isoformat()
        wanted = [(raw_ref, set(still)) for raw_ref, still in items]

        def write() -> int:
            done: list[tuple[str, str]] = []
            for raw_ref, keep in wanted:
                rows = self._conn.execute(
                    "SELECT dead_letter_id, position FROM dead_letters WHERE raw_ref=? AND status='open'",
                    (raw_ref,),
                ).fetchall()
                done += [(now, dl_id) for dl_id, pos in rows if pos not in keep]
            if done:
                self._conn.executemany(
                    "UPDATE dead_letters SET status='resolved', resolved_at=? WHERE dead_letter_id=?", done
                )
            return len(done)

        return await self._run(write)

    async def query(
        self,
        *,
        status: str | None = "open",
        system: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        raw_ref: str | None = None,
        kind: str | None = "failure",
    ) -> list[DeadLetter]:
        where, args = _sqlite_filter(status, system, raw_ref, kind)
        sql = f"SELECT {_COLS} FROM dead_letters{where}"  # nosec B608: column lists are our constants; values are bound
        sql += " ORDER BY failed_at, raw_ref, position LIMIT ? OFFSET ?"
        rows = await self._run(lambda: self._conn.execute(sql, (*args, limit, offset)).fetchall())
        return [_from_row(r) for r in rows]

    async def count(
        self, *, status: str | None = "open", system: str | None = None, kind: str | None = "failure"
    ) -> int:
        where, args = _sqlite_filter(status, system, None, kind)
        sql = f"SELECT count(*) FROM dead_letters{where}"  # nosec B608: constant fragments; values are bound
        return int(await self._run(lambda: self._conn.execute(sql, args).fetchone()[0]))

    async def open_raw_refs(self, system: str | None = None) -> list[str]:
        sql = "SELECT DISTINCT raw_ref FROM dead_letters WHERE status='open'" + (  # nosec B608: column lists are our constants; values are bound
            " AND system=?" if system else ""
        )
        rows = await self._run(lambda: self._conn.execute(sql, (system,) if system else ()).fetchall())
        return sorted(r[0] for r in rows)

    async def counts(self) -> dict[str, dict[str, int]]:
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT system, status, count(*) FROM dead_letters WHERE kind='failure'"
                " GROUP BY system, status"
            ).fetchall()
        )
        out: dict[str, dict[str, int]] = {}
        for system, status, n in rows:
            out.setdefault(system, {"open": 0, "resolved": 0})[status] = n
        return out

    async def reasons(self, *, limit: int = 10) -> list[tuple[str, str, int]]:
        """Most frequent open (system, code) pairs, for summaries."""
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT system, code, count(*) AS n FROM dead_letters WHERE status='open' AND kind='failure'"
                " GROUP BY system, code ORDER BY n DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [(s, c, n) for s, c, n in rows]


PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS hub_dead_letters (
    dead_letter_id TEXT PRIMARY KEY,
    raw_ref TEXT NOT NULL,
    system TEXT NOT NULL,
    message_id TEXT NOT NULL,
    position TEXT NOT NULL,
    reason TEXT NOT NULL,
    code TEXT NOT NULL,
    location TEXT NOT NULL,
    excerpt TEXT,
    adapter_version TEXT NOT NULL,
    mapping_version TEXT,
    failed_at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'failure',
    attempts INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_at TEXT
);
CREATE INDEX IF NOT EXISTS hub_dead_letters_open ON hub_dead_letters (status, system);
CREATE INDEX IF NOT EXISTS hub_dead_letters_raw ON hub_dead_letters (raw_ref);
ALTER TABLE hub_dead_letters ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'failure';
"""
_PG_INSERT_COLS = _COLS.rsplit(", attempts", 1)[0]


def _sqlite_filter(
    status: str | None, system: str | None, raw_ref: str | None, kind: str | None = None
) -> tuple[str, list[str]]:
    named = (("status", status), ("system", system), ("raw_ref", raw_ref), ("kind", kind))
    pairs = [(c, v) for c, v in named if v]
    where = " AND ".join(f"{c} = ?" for c, _ in pairs)
    return (" WHERE " + where if where else ""), [v for _, v in pairs]


class PostgresDeadLetterStore:
    """The dead letters of every node of a site, in the archive's PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self._engine = pg_engine(url)
        create_schema(self._engine, PG_SCHEMA)

    def close(self) -> None:
        self._engine.dispose()

    def _read(self, sql: str, params: dict[str, Any]) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    async def record(self, letters: Sequence[DeadLetter]) -> None:
        """Insert new dead letters; a known one is re-opened with the new reason and one more attempt."""
        names = [c.strip() for c in _PG_INSERT_COLS.split(",")]
        rows = [dict(zip(names, _row_values(d), strict=True)) for d in letters]
        if not rows:
            return

        def write() -> None:
            with self._engine.begin() as conn:
                conn.execute(
                    text(
                        f"INSERT INTO hub_dead_letters ({_PG_INSERT_COLS})"  # nosec B608: constant columns
                        f" VALUES ({', '.join(':' + n for n in names)})"
                        " ON CONFLICT (dead_letter_id) DO UPDATE SET reason=excluded.reason,"
                        " kind=excluded.kind,"
                        " code=excluded.code, location=excluded.location, excerpt=excluded.excerpt,"
                        " adapter_version=excluded.adapter_version,"
                        " mapping_version=excluded.mapping_version, failed_at=excluded.failed_at,"
                        " attempts = CASE WHEN hub_dead_letters.mapping_version IS NOT DISTINCT FROM"
                        "   excluded.mapping_version AND hub_dead_letters.status = 'open'"
                        "   THEN hub_dead_letters.attempts ELSE hub_dead_letters.attempts + 1 END,"
                        " status='open', resolved_at=NULL"
                    ),
                    rows,
                )

        await asyncio.to_thread(write)

    async def resolve_others(self, raw_ref: str, still_failing: Sequence[str]) -> int:
        """Mark open dead letters of `raw_ref` whose position no longer fails as resolved."""
        return await self.resolve_others_many([(raw_ref, still_failing)])

    async def resolve_others_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> int:
        """`resolve_others` for several messages (a translation batch) in one transaction."""
        if not items:
            return 0
        now = datetime.now(UTC).isoformat()

        def write() -> int:
            resolved = 0
            with self._engine.begin() as conn:
                for raw_ref, still in items:
                    resolved += conn.execute(
                        text(
                            "UPDATE hub_dead_letters SET status='resolved', resolved_at=:now"
                            " WHERE raw_ref=:ref AND status='open' AND NOT (position = ANY(:keep))"
                        ),
                        {"now": now, "ref": raw_ref, "keep": list(still)},
                    ).rowcount
            return resolved

        return await asyncio.to_thread(write)

    async def query(
        self,
        *,
        status: str | None = "open",
        system: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        raw_ref: str | None = None,
        kind: str | None = "failure",
    ) -> list[DeadLetter]:
        sql = f"SELECT {_COLS} FROM hub_dead_letters{_pg_filter(status, system, raw_ref, kind)}"  # nosec B608: constant columns
        sql += " ORDER BY failed_at, raw_ref, position LIMIT :limit OFFSET :offset"
        params: dict[str, Any] = {"status": status, "system": system, "raw_ref": raw_ref, "kind": kind}
        params |= {"limit": limit, "offset": offset}
        return [_from_row(r) for r in await asyncio.to_thread(self._read, sql, params)]

    async def count(
        self, *, status: str | None = "open", system: str | None = None, kind: str | None = "failure"
    ) -> int:
        sql = f"SELECT count(*) FROM hub_dead_letters{_pg_filter(status, system, None, kind)}"  # nosec B608: constant columns
        rows = await asyncio.to_thread(self._read, sql, {"status": status, "system": system, "kind": kind})
        return int(rows[0][0])

    async def open_raw_refs(self, system: str | None = None) -> list[str]:
        sql = (
            "SELECT DISTINCT raw_ref FROM hub_dead_letters WHERE status='open'"
            " AND (CAST(:system AS text) IS NULL OR system = :system)"
        )
        rows = await asyncio.to_thread(self._read, sql, {"system": system or None})
        return sorted(r[0] for r in rows)

    async def counts(self) -> dict[str, dict[str, int]]:
        rows = await asyncio.to_thread(
            self._read,
            "SELECT system, status, count(*) FROM hub_dead_letters WHERE kind='failure'"
            " GROUP BY system, status",
            {},
        )
        out: dict[str, dict[str, int]] = {}
        for system, status, n in rows:
            out.setdefault(system, {"open": 0, "resolved": 0})[status] = int(n)
        return out

    async def reasons(self, *, limit: int = 10) -> list[tuple[str, str, int]]:
        """Most frequent open (system, code) pairs, for summaries."""
        rows = await asyncio.to_thread(
            self._read,
            "SELECT system, code, count(*) AS n FROM hub_dead_letters WHERE status='open' AND kind='failure'"
            " GROUP BY system, code ORDER BY n DESC LIMIT :limit",
            {"limit": limit},
        )
        return [(s, c, int(n)) for s, c, n in rows]


def _pg_filter(status: str | None, system: str | None, raw_ref: str | None, kind: str | None = None) -> str:
    named = (("status", status), ("system", system), ("raw_ref", raw_ref), ("kind", kind))
    names = [n for n, v in named if v]
    return (" WHERE " + " AND ".join(f"{n} = :{n}" for n in names)) if names else ""
