"""Raw archive: every inbound message byte for byte, durable before anyone is answered.

One SQLite file (WAL, synchronous=FULL) holds the records; payloads above `INLINE_LIMIT` go to
a content-addressed blob store beside it (written and fsync'd before the record that points to
them). The archive is also the outbox: `unpublished()` / `mark_published()` let the relay move
records to the raw topic, so ingest keeps answering while the broker is down.

An exact resend (same system, same bytes) is not stored twice: `store` returns the first
record with `duplicate=True`, and counts the resend.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from hub.crypto import RawCipher, is_encrypted
from hub.errors import ArchiveError, NotStored
from hub.ports import RAW_STATUSES, InboundMessage, MessageStatus, RawRecord, StoreOutcome
from hub.sqlite import connect_durable

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence
    from pathlib import Path

logger = structlog.get_logger()

INLINE_LIMIT = 1024 * 1024
LINGER_S = 0.0005
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_ref TEXT NOT NULL UNIQUE,
    system TEXT NOT NULL,
    site TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    transport TEXT NOT NULL,
    received_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    payload BLOB,
    blob INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    events INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    units INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    mapping_version TEXT,
    processed_at TEXT,
    resends INTEGER NOT NULL DEFAULT 0,
    source_key TEXT,
    answer BLOB
);
CREATE INDEX IF NOT EXISTS raw_messages_key ON raw_messages (system, source_key) WHERE source_key IS NOT NULL;
-- Partial indexes: the hot path (MLLP group commit) pays for every index page it touches.
CREATE INDEX IF NOT EXISTS raw_messages_unpublished ON raw_messages (seq) WHERE published = 0;
CREATE INDEX IF NOT EXISTS raw_messages_pending ON raw_messages (system, seq) WHERE status != 'translated';
"""

STATUSES = RAW_STATUSES
__all__ = ["INLINE_LIMIT", "STATUSES", "MessageStatus", "SqliteRawArchive", "raw_ref_for"]


def raw_ref_for(system: str, sha256: str) -> str:
    """Content-addressed per system: the same bytes from the same system are the same record."""
    return f"{system}:{sha256[:32]}"


def _record(row: sqlite3.Row | tuple[Any, ...]) -> RawRecord:
    raw_ref, system, site, message_id, sha, size, transport, received_at, metadata = row[:9]
    return RawRecord(
        raw_ref=raw_ref,
        system=system,
        site=site,
        message_id=message_id,
        sha256=sha,
        size=size,
        transport=transport,
        received_at=datetime.fromisoformat(received_at),
        metadata=json.loads(metadata),
    )


# Column lists below are constants of this module; every value is a bound parameter (B608).
_COLUMNS = "raw_ref, system, site, message_id, sha256, size, transport, received_at, metadata"


@dataclass(slots=True)
class _Pending:
    message: InboundMessage
    sha: str
    ref: str
    received: datetime
    key: str | None
    answer: bytes | None
    future: asyncio.Future[StoreOutcome]


class SqliteRawArchive:
    """hub.ports.RawArchive on a local SQLite file + blob directory."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        cipher: RawCipher | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._path = path
        self._cipher = cipher
        self._max_bytes = max_bytes
        self._blobs = path.parent / "blobs"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._conn = connect_durable(path)
        self._conn.executescript(SCHEMA)
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_batch = 1

    # -- running blocking SQLite work off the event loop, one statement group at a time
    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- the port
    async def store(
        self, message: InboundMessage, *, key: str | None = None, answer: bytes | None = None
    ) -> StoreOutcome:
        """Store durably; concurrent callers share one transaction and one fsync (group commit).

        `key` is the source's own message key (for HL7: MSH-3|MSH-4|MSH-10). The same key with the
        same bytes is a duplicate; with other bytes the message is stored and flagged as a conflict.
        `answer`: what the sender will be told (e.g. an HL7 ACK), kept in the same transaction so a
        resend gets it back; a duplicate keeps the first answer.
        """
        if self._max_bytes is not None and len(message.payload) > self._max_bytes:
            # The backstop behind every transport's own limit: refused before anything is kept.
            raise NotStored(
                f"raw {message.system} message {message.message_id!r}: {len(message.payload):,} bytes"
                f" is over the archive's limit of {self._max_bytes:,} bytes"
            )
        sha = hashlib.sha256(message.payload).hexdigest()
        pending = _Pending(
            message,
            sha,
            raw_ref_for(message.system, sha),
            (message.received_at or self._clock()).astimezone(UTC),
            key,
            answer,
            asyncio.get_running_loop().create_future(),
        )
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="archive-writer")
        return await pending.future

    async def _write_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            # Linger briefly (at most LINGER_S, like PostgreSQL's commit_delay) while fewer are
            # waiting than went into the last commit: senders answered by that commit are already
            # sending their next message, and one fsync for all of them beats one each. A lone
            # sender (last batch of 1) never waits.
            deadline = loop.time() + LINGER_S
            while len(self._queue) < self._last_batch and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0)
            batch, self._queue = self._queue, []
            self._last_batch = len(batch)
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        """Store `batch` in one transaction and answer every waiter: with its outcome or NotStored.

        Any failure counts, not only I/O errors: a waiter left unanswered would hang its sender.
        A failed batch of several is retried one by one, so one message the store cannot take
        (bad metadata, say) fails alone and the others sharing its transaction are kept.
        """
        try:
            outcomes = await self._run(lambda: self._store_batch(batch))
        except Exception as exc:  # noqa: BLE001  (answered below; never lost, never left waiting)
            if len(batch) > 1:
                for p in batch:
                    await self._commit([p])
                return
            p = batch[0]
            if not p.future.done():
                p.future.set_exception(
                    NotStored(
                        f"raw {p.message.system} message {p.message.message_id!r} was not stored: "
                        f"{type(exc).__name__}: {exc}"
                    )
                )
            return
        for p, outcome in zip(batch, outcomes, strict=True):
            if not p.future.done():
                p.future.set_result(outcome)

    def _sealed(self, p: _Pending) -> bytes:
        """The bytes as kept on disk: ciphertext bound to the raw ref when a key is configured."""
        payload = p.message.payload
        return self._cipher.encrypt(payload, context=p.ref.encode()) if self._cipher else payload

    def _store_batch(self, batch: list[_Pending]) -> list[StoreOutcome]:
        for p in batch:
            if len(p.message.payload) > INLINE_LIMIT:
                self._write_blob(p.sha, self._sealed(p))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = [self._store_one(p) for p in batch]
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return outcomes

    def _store_one(self, p: _Pending) -> StoreOutcome:
        message = p.message
        existing = self._conn.execute(
            f"SELECT {_COLUMNS}, answer FROM raw_messages WHERE raw_ref = ?",  # nosec B608
            (p.ref,),
        ).fetchone()
        if existing is not None:
            self._conn.execute("UPDATE raw_messages SET resends = resends + 1 WHERE raw_ref = ?", (p.ref,))
            answer = None if existing[9] is None else bytes(existing[9])
            return StoreOutcome(record=_record(existing), duplicate=True, answer=answer)
        conflict = None
        if p.key is not None:
            row = self._conn.execute(
                "SELECT raw_ref FROM raw_messages WHERE system = ? AND source_key = ? ORDER BY seq LIMIT 1",
                (message.system, p.key),
            ).fetchone()
            conflict = None if row is None else str(row[0])
        inline = len(message.payload) <= INLINE_LIMIT
        meta = dict(message.metadata)
        if conflict is not None:
            meta["conflict_with"] = conflict  # travels with the record: translators must not use it
        metadata = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        self._conn.execute(
            "INSERT INTO raw_messages (raw_ref, system, site, message_id, sha256, size, transport,"
            " received_at,"
            " metadata, payload, blob, source_key, answer) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                p.ref,
                message.system,
                message.site,
                message.message_id,
                p.sha,
                len(message.payload),
                message.transport,
                p.received.isoformat(),
                metadata,
                self._sealed(p) if inline else None,
                0 if inline else 1,
                p.key,
                p.answer,
            ),
        )
        record = RawRecord(
            raw_ref=p.ref,
            system=message.system,
            site=message.site,
            message_id=message.message_id,
            sha256=p.sha,
            size=len(message.payload),
            transport=message.transport,
            received_at=p.received,
            metadata=meta,
        )
        return StoreOutcome(record=record, conflict_with=conflict)

    async def save_answer(self, raw_ref: str, answer: bytes) -> None:
        """Keep what the sender was told, so an exact resend gets the same answer back."""
        updated = await self._run(
            lambda: (
                self._conn.execute(
                    "UPDATE raw_messages SET answer = ? WHERE raw_ref = ?", (answer, raw_ref)
                ).rowcount
            )
        )
        if updated == 0:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive to save an answer for")

    def _blob_path(self, sha: str) -> Path:
        return self._blobs / sha[:2] / sha

    def _write_blob(self, sha: str, payload: bytes) -> None:
        target = self._blob_path(sha)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)

    async def get(self, raw_ref: str) -> RawRecord:
        row = await self._run(
            lambda: self._conn.execute(
                f"SELECT {_COLUMNS} FROM raw_messages WHERE raw_ref = ?",  # nosec B608
                (raw_ref,),
            ).fetchone()
        )
        if row is None:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive")
        return _record(row)

    async def lookup(self, raw_ref: str) -> RawRecord | None:
        """The record, or None for a reference the archive does not hold."""
        try:
            return await self.get(raw_ref)
        except ArchiveError:
            return None

    async def payload(self, raw_ref: str) -> bytes:
        row = await self._run(
            lambda: self._conn.execute(
                "SELECT payload, blob, sha256 FROM raw_messages WHERE raw_ref = ?", (raw_ref,)
            ).fetchone()
        )
        if row is None:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive")
        payload, blob, sha = row
        stored = bytes(payload) if not blob else await asyncio.to_thread(self._blob_path(sha).read_bytes)
        data = self.reveal(raw_ref, stored)
        if blob and hashlib.sha256(data).hexdigest() != sha:
            raise ArchiveError(f"blob for {raw_ref} does not match its sha256: the blob store was altered")
        return data

    def reveal(self, raw_ref: str, stored: bytes) -> bytes:
        """Plaintext of stored (possibly encrypted) payload bytes, e.g. as read from the raw topic."""
        if not is_encrypted(stored):
            return stored
        if self._cipher is None:
            raise ArchiveError(f"raw message {raw_ref} is encrypted and HUB_RAW_KEY is not set")
        return self._cipher.decrypt(stored, context=raw_ref.encode())

    # -- outbox
    async def unpublished(self, limit: int = 500) -> list[tuple[RawRecord, bytes | None]]:
        """Oldest records not yet on the raw topic; payload inline when small, else None (blob)."""
        rows = await self._run(
            lambda: self._conn.execute(
                f"SELECT {_COLUMNS}, payload FROM raw_messages WHERE published = 0 ORDER BY seq LIMIT ?",  # nosec B608: column lists are our constants; values are bound
                (limit,),
            ).fetchall()
        )
        return [(_record(r), None if r[9] is None else bytes(r[9])) for r in rows]

    async def mark_published(self, refs: Sequence[str]) -> None:
        await self._run(
            lambda: self._conn.executemany(
                "UPDATE raw_messages SET published = 1 WHERE raw_ref = ?", [(r,) for r in refs]
            )
        )

    # -- processing status (reconciliation: received = translated + dead_lettered + pending)
    async def set_status(
        self,
        raw_ref: str,
        *,
        status: str,
        events: int,
        failures: int,
        skipped: int,
        units: int,
        mapping_version: str | None,
        error: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = self._clock().astimezone(UTC).isoformat()
        updated = await self._run(
            lambda: (
                self._conn.execute(
                    "UPDATE raw_messages SET status=?, events=?, failures=?, skipped=?, units=?,"
                    " mapping_version=?,"
                    " error=?, processed_at=? WHERE raw_ref=?",
                    (status, events, failures, skipped, units, mapping_version, error, now, raw_ref),
                ).rowcount
            )
        )
        if updated == 0:
            # Not an error: with Kafka, a translator may work on a raw record another node archived
            # (its payload travelled on the raw topic). Raising would make that record a poison pill.
            logger.warning("raw_status_for_unknown_message", raw_ref=raw_ref, status=status)

    async def status(self, raw_ref: str) -> MessageStatus | None:
        row = await self._run(
            lambda: self._conn.execute(
                "SELECT raw_ref, status, events, failures, skipped, units, error"
                " FROM raw_messages WHERE raw_ref=?",
                (raw_ref,),
            ).fetchone()
        )
        return None if row is None else MessageStatus(*row)

    async def reconciliation(self) -> dict[str, dict[str, int]]:
        """Per system: received, translated, dead_lettered, pending, resends, events, rows failed, skipped."""
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT system, status, count(*), sum(resends), sum(events), sum(failures), sum(skipped)"
                " FROM raw_messages GROUP BY system, status"
            ).fetchall()
        )
        out: dict[str, dict[str, int]] = {}
        for system, status, n, resends, events, failures, skipped in rows:
            entry = out.setdefault(
                system,
                dict.fromkeys(("received", *STATUSES, "resends", "events", "rows_failed", "rows_skipped"), 0),
            )
            entry["received"] += n
            entry[status] += n
            entry["resends"] += resends or 0
            entry["events"] += events or 0
            entry["rows_failed"] += failures or 0
            entry["rows_skipped"] += skipped or 0
        return out

    async def refs_with_status(self, status: str, system: str | None = None) -> list[str]:
        query = "SELECT raw_ref FROM raw_messages WHERE status = ?" + (" AND system = ?" if system else "")  # nosec B608: column lists are our constants; values are bound
        args: tuple[str, ...] = (status, system) if system else (status,)
        rows = await self._run(lambda: self._conn.execute(query + " ORDER BY seq", args).fetchall())
        return [r[0] for r in rows]
