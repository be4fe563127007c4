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
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from hub.errors import ArchiveError, NotStored
from hub.ingest import channel_counts as cc
from hub.ingest.crypto import RawCipher, is_encrypted
from hub.ingest.fresh import FreshFeed
from hub.ports import (
    RAW_STATUSES,
    InboundMessage,
    MessageStatus,
    RawQuery,
    RawRecord,
    RawSummary,
    SourceKey,
    StatusUpdate,
    StoreOutcome,
)
from hub.sqlite import connect_durable

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

logger = structlog.get_logger()

INLINE_LIMIT = 1024 * 1024
LINGER_S = 0.0005
ANSWER_LINGER_S = 0.05
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
    accounting TEXT,
    source_key TEXT,
    answer BLOB
);
CREATE INDEX IF NOT EXISTS raw_messages_key ON raw_messages (system, source_key) WHERE source_key IS NOT NULL;
-- One dedup rule per source, whatever the transport: the first record holding a source key
-- (HL7: MSH-3, MSH-4, MSH-10) owns it, with the hash of its normalised content.
CREATE TABLE IF NOT EXISTS raw_source_keys (
    system TEXT NOT NULL,
    source_key TEXT NOT NULL,
    content TEXT NOT NULL,
    raw_ref TEXT NOT NULL,
    part INTEGER NOT NULL,
    PRIMARY KEY (system, source_key)
) WITHOUT ROWID;
-- Partial indexes: the hot path (MLLP group commit) pays for every index page it touches.
CREATE INDEX IF NOT EXISTS raw_messages_unpublished ON raw_messages (seq) WHERE published = 0;
CREATE INDEX IF NOT EXISTS raw_messages_pending ON raw_messages (system, seq) WHERE status != 'translated';
"""

# The message browser's indexes (GET /messages): by system, by the source's id, by arrival time.
# Each costs the hot path an index page per insert; the type and text filters scan what these leave.
BROWSE_SCHEMA = """
CREATE INDEX IF NOT EXISTS raw_messages_browse_system ON raw_messages (system, seq);
CREATE INDEX IF NOT EXISTS raw_messages_browse_id ON raw_messages (message_id);
CREATE INDEX IF NOT EXISTS raw_messages_browse_received ON raw_messages (received_at);
CREATE INDEX IF NOT EXISTS raw_messages_browse_type
    ON raw_messages (json_extract(metadata, '$.message_type'), seq)
    WHERE json_extract(metadata, '$.message_type') IS NOT NULL;
"""

STATUSES = RAW_STATUSES
__all__ = [
    "INLINE_LIMIT",
    "STATUSES",
    "GroupCommitArchive",
    "MessageStatus",
    "SourceKey",
    "SqliteRawArchive",
    "raw_ref_for",
]

# Metadata a multi-message payload (an HL7 batch file) gets when some of its messages were
# received before: `<part>=<raw ref>` pairs (parts numbered from 1, in payload order).
META_RESENT_PARTS = "resent_parts"
META_CONFLICT_PARTS = "conflict_parts"


def format_parts(parts: dict[int, str]) -> str:
    return ",".join(f"{part}={ref}" for part, ref in sorted(parts.items()))


def parse_parts(value: str | None) -> dict[int, str]:
    """`format_parts` read back; tolerant of an empty value."""
    out: dict[int, str] = {}
    for item in (value or "").split(","):
        part, _, ref = item.partition("=")
        if part.strip().isdigit():
            out[int(part)] = ref
    return out


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


def checked_statuses(updates: Sequence[StatusUpdate]) -> bool:
    """Whether there is anything to write; ValueError on a status the archive does not know."""
    for u in updates:
        if u.status not in STATUSES:
            raise ValueError(f"unknown status {u.status!r}")
    return bool(updates)


@dataclass(slots=True)
class _Pending:
    message: InboundMessage
    sha: str
    ref: str
    received: datetime
    keys: tuple[SourceKey, ...]
    answer: bytes | None
    future: asyncio.Future[StoreOutcome]
    stored: bytes | None = None  # the inline bytes as written (sealed), for the relay's fresh feed


@dataclass(slots=True)
class _Update:
    """A small write (a status, the outbox's published flags) that rides on the next group commit.

    `write` gets the backend's connection inside the commit's transaction; returns its row count.
    """

    write: Callable[[Any], int]
    future: asyncio.Future[int]


class GroupCommitArchive:
    """The backend-neutral half of a raw archive: group commit of concurrent stores, encryption.

    A backend gives `_run` (blocking work off the event loop), `_store_batch` (one transaction
    for a batch, the answers to keep and the small updates riding along) and the queries of the port.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        cipher: RawCipher | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._cipher = cipher
        self._max_bytes = max_bytes
        self._clock = clock or (lambda: datetime.now(UTC))
        self._queue: list[_Pending] = []
        self._answers: list[tuple[str, bytes]] = []
        self._updates: list[_Update] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_batch = 1
        # The writer lingering for more stores: set once `_wanted` are queued (no polling loop).
        self._arrived: asyncio.Event | None = None
        self._wanted = 0
        # hub.metrics: told each commit's duration and message count (set by the composition root)
        self.commit_observer: Callable[[float, int], None] | None = None

    async def set_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        raise NotImplementedError  # each backend writes a batch its own way

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
        accounting: Mapping[str, Any] | None = None,
    ) -> None:
        """One message's status: a batch of one."""
        await self.set_statuses(
            [
                StatusUpdate(
                    raw_ref, status, events, failures, skipped, units, mapping_version, error, accounting
                )
            ]
        )

    async def _run(self, fn: Callable[[], T]) -> T:
        raise NotImplementedError

    def _store_batch(
        self, batch: list[_Pending], answers: list[tuple[str, bytes]], updates: Sequence[_Update] = ()
    ) -> tuple[list[StoreOutcome], list[int]]:
        raise NotImplementedError

    async def get(self, raw_ref: str) -> RawRecord:
        raise NotImplementedError

    # -- the port
    async def store(
        self,
        message: InboundMessage,
        *,
        key: str | None = None,
        keys: Sequence[SourceKey] = (),
        answer: bytes | None = None,
    ) -> StoreOutcome:
        """Store durably; concurrent callers share one transaction and one fsync (group commit).

        `keys`: the source's own message keys in the payload (HL7: MSH-3, MSH-4, MSH-10 of each
        message) with their normalised content hash; `key` is the one-message shorthand (content:
        the payload's sha256). For a one-message payload, a key already held with the same content
        is an exact resend: nothing new is stored and the first record (and its answer) comes
        back as a duplicate; with other content the message is stored and flagged as a conflict.
        In a payload of several messages, the resent and conflicting ones are named in the
        record's metadata (`resent_parts`, `conflict_parts`) for the translation step.
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
        if key is not None and not keys:
            keys = (SourceKey(key, sha),)
        pending = _Pending(
            message,
            sha,
            raw_ref_for(message.system, sha),
            (message.received_at or self._clock()).astimezone(UTC),
            tuple(keys),
            answer,
            asyncio.get_running_loop().create_future(),
        )
        self._queue.append(pending)
        if self._arrived is not None and len(self._queue) >= self._wanted:
            self._arrived.set()
        self._wake_writer()
        return await pending.future

    def note_answer(self, raw_ref: str, answer: bytes) -> None:
        """Keep what the sender was told, written with the next group commit (not awaited).

        For the hot path: the stored outcome (record, dead letters) is durable before the answer
        is sent; the answer itself can be rebuilt from it if a crash loses it before its commit.
        """
        self._answers.append((raw_ref, answer))
        self._wake_writer()

    async def _update(self, write: Callable[[Any], int]) -> int:
        """Run `write` in the next group commit (with the stores waiting then); its row count.

        Status updates and the outbox's flags would otherwise take a transaction and an fsync of
        their own each, holding SQLite's one write lock while senders wait for their ACK.
        """
        update = _Update(write, asyncio.get_running_loop().create_future())
        self._updates.append(update)
        self._wake_writer()
        return await update.future

    def _wake_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="archive-writer")

    async def _write_queued(self) -> None:
        while self._queue or self._answers or self._updates:
            if not self._queue and not self._updates:
                # Only answers to keep: they ride on the next store's commit when one comes soon
                # (a lone sender's next message), else get their own after ANSWER_LINGER_S.
                await self._linger(1, ANSWER_LINGER_S)
            # Linger briefly (at most LINGER_S, like PostgreSQL's commit_delay) while fewer are
            # waiting than went into the last commit: senders answered by that commit are already
            # sending their next message, and one fsync for all of them beats one each. A lone
            # sender (last batch of 1) never waits.
            await self._linger(self._last_batch, LINGER_S)
            batch, self._queue = self._queue, []
            answers, self._answers = self._answers, []
            updates, self._updates = self._updates, []
            if batch:
                self._last_batch = len(batch)
            await self._commit(batch, answers, updates)

    async def _linger(self, stores: int, seconds: float) -> None:
        """Wait until `stores` messages are queued, at most `seconds`: woken by `store`, not by
        polling (a loop of zero sleeps kept the event loop spinning while nothing else ran)."""
        if len(self._queue) >= stores:
            return
        self._wanted, self._arrived = stores, asyncio.Event()
        try:
            async with asyncio.timeout(seconds):
                await self._arrived.wait()
        except TimeoutError:
            pass  # the linger is over: commit what is there
        finally:
            self._arrived = None

    async def _commit(
        self, batch: list[_Pending], answers: list[tuple[str, bytes]], updates: Sequence[_Update] = ()
    ) -> None:
        """Store `batch` (and the answers and updates waiting to be kept) in one transaction and
        answer every waiter: with its outcome or NotStored (an update: with the error).

        Any failure counts, not only I/O errors: a waiter left unanswered would hang its sender.
        A failed batch of several is retried one by one, so one message the store cannot take
        (bad metadata, say) fails alone and the others sharing its transaction are kept.
        """
        started = time.perf_counter()
        try:
            outcomes, counts = await self._run(lambda: self._store_batch(batch, answers, updates))
        except Exception as exc:  # noqa: BLE001  (answered below; never lost, never left waiting)
            logger.warning(
                "archive_batch_failed",
                messages=len(batch),
                answers=len(answers),
                updates=len(updates),
                error=str(exc),
            )
            await self._failed(exc, batch, answers, updates)
            return
        if self.commit_observer is not None:
            self.commit_observer(time.perf_counter() - started, len(batch))
        for p, outcome in zip(batch, outcomes, strict=True):
            if not p.future.done():
                p.future.set_result(outcome)
        for u, count in zip(updates, counts, strict=True):
            if not u.future.done():
                u.future.set_result(count)

    async def _failed(
        self,
        exc: Exception,
        batch: list[_Pending],
        answers: list[tuple[str, bytes]],
        updates: Sequence[_Update],
    ) -> None:
        """A failed commit: several writes are tried again one by one, a single one gets the error."""
        if len(batch) + len(updates) > 1:
            for i, p in enumerate(batch):
                await self._commit([p], answers if i == 0 else [])
            for i, u in enumerate(updates):
                await self._commit([], answers if not batch and i == 0 else [], [u])
            return
        if updates:
            if not updates[0].future.done():
                updates[0].future.set_exception(exc)
            return
        if not batch:
            return  # only answers: a resend rebuilds its ACK from the stored message
        p = batch[0]
        if not p.future.done():
            p.future.set_exception(
                NotStored(
                    f"raw {p.message.system} message {p.message.message_id!r} was not stored: "
                    f"{type(exc).__name__}: {exc}"
                )
            )

    def _sealed(self, p: _Pending) -> bytes:
        """The bytes as kept on disk: ciphertext bound to the raw ref when a key is configured."""
        payload = p.message.payload
        return self._cipher.encrypt(payload, context=p.ref.encode()) if self._cipher else payload

    async def lookup(self, raw_ref: str) -> RawRecord | None:
        """The record, or None for a reference the archive does not hold."""
        try:
            return await self.get(raw_ref)
        except ArchiveError:
            return None

    def reveal(self, raw_ref: str, stored: bytes) -> bytes:
        """Plaintext of stored (possibly encrypted) payload bytes, e.g. as read from the raw topic."""
        if not is_encrypted(stored):
            return stored
        if self._cipher is None:
            raise ArchiveError(f"raw message {raw_ref} is encrypted and HUB_RAW_KEY is not set")
        return self._cipher.decrypt(stored, context=raw_ref.encode())


class SqliteRawArchive(GroupCommitArchive):
    """hub.ports.RawArchive on a local SQLite file + blob directory."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        cipher: RawCipher | None = None,
        max_bytes: int | None = None,
    ) -> None:
        super().__init__(clock=clock, cipher=cipher, max_bytes=max_bytes)
        self._path = path
        self._blobs = path.parent / "blobs"
        self._lock = threading.Lock()
        self._conn = connect_durable(path)
        self._conn.executescript(SCHEMA)
        self._add_accounting_column()
        self._conn.executescript(BROWSE_SCHEMA)
        self._adopt_legacy_keys()
        cc.sqlite_install(self._conn)  # per-channel counts, kept by triggers in each commit
        self._pruned = ""
        # What each commit added to the outbox, handed to the relay from memory (hub.ingest.fresh).
        self.fresh = FreshFeed()

    def _add_accounting_column(self) -> None:
        """Archives written before field accounting lack the column: add it (SQLite has no
        ADD COLUMN IF NOT EXISTS)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(raw_messages)")}
        if "accounting" not in columns:
            self._conn.execute("ALTER TABLE raw_messages ADD COLUMN accounting TEXT")

    def _adopt_legacy_keys(self) -> None:
        """Archives written before `raw_source_keys` kept the MLLP key on the record: claim those once."""
        if self._conn.execute("SELECT 1 FROM raw_source_keys LIMIT 1").fetchone() is not None:
            return
        self._conn.execute(
            "INSERT OR IGNORE INTO raw_source_keys (system, source_key, content, raw_ref, part)"
            " SELECT system, source_key, sha256, raw_ref, 1 FROM raw_messages"
            " WHERE source_key IS NOT NULL ORDER BY seq"
        )

    # -- running blocking SQLite work off the event loop, one statement group at a time
    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    def close(self) -> None:
        with self._lock:
            if self._answers:  # answers still waiting for a commit to join: keep them
                answers, self._answers = self._answers, []
                try:
                    self._store_batch([], answers, ())
                except sqlite3.Error as exc:
                    logger.warning("archive_answers_not_kept", answers=len(answers), error=str(exc))
            if self._writer is not None and not self._writer.done():
                self._writer.cancel()
            self._conn.close()

    def _store_batch(
        self, batch: list[_Pending], answers: list[tuple[str, bytes]], updates: Sequence[_Update] = ()
    ) -> tuple[list[StoreOutcome], list[int]]:
        for p in batch:
            if len(p.message.payload) > INLINE_LIMIT:
                self._write_blob(p.sha, self._sealed(p))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            # Answers first: a resend in this same batch then finds the answer its first copy got.
            self._conn.executemany(
                "UPDATE raw_messages SET answer = ? WHERE raw_ref = ? AND answer IS NULL",
                [(a, ref) for ref, a in answers],
            )
            outcomes = [self._store_one(p) for p in batch]
            counts = [u.write(self._conn) for u in updates]
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        # Still under the write lock: a sweep of the outbox sees these either here or in its query.
        self.fresh.add((o.record, p.stored) for p, o in zip(batch, outcomes, strict=True) if not o.duplicate)
        return outcomes, counts

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
        single = self._owner(message.system, p.keys[0].key) if len(p.keys) == 1 else None
        if single is not None and single[1] == p.keys[0].content:
            # The same message again with other bytes (line endings, another transport).
            return self._resend_of(single[0])
        conflict = None
        resent: dict[int, str] = {}
        conflicts: dict[int, str] = {}
        for k in p.keys:
            # Looked up one by one: a message repeated inside the payload is a resend of its first copy.
            owner = single if len(p.keys) == 1 else self._owner(message.system, k.key)
            if owner is None:
                self._conn.execute(
                    "INSERT INTO raw_source_keys (system, source_key, content, raw_ref, part)"
                    " VALUES (?,?,?,?,?)",
                    (message.system, k.key, k.content, p.ref, k.part),
                )
                continue
            (resent if owner[1] == k.content else conflicts)[k.part] = owner[0]
        if len(p.keys) == 1 and conflicts:
            conflict = conflicts[p.keys[0].part]
            conflicts = {}
        inline = len(message.payload) <= INLINE_LIMIT
        meta = dict(message.metadata)
        if conflict is not None:
            meta["conflict_with"] = conflict  # travels with the record: translators must not use it
        if resent:
            meta[META_RESENT_PARTS] = format_parts(resent)
        if conflicts:
            meta[META_CONFLICT_PARTS] = format_parts(conflicts)
        metadata = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        p.stored = self._sealed(p) if inline else None
        self._conn.execute(
            # source_key is left NULL: raw_source_keys holds the keys now (the column and its
            # index serve archives written before it, adopted once at open).
            "INSERT INTO raw_messages (raw_ref, system, site, message_id, sha256, size, transport,"
            " received_at,"
            " metadata, payload, blob, answer) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                p.stored,
                0 if inline else 1,
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

    def _owner(self, system: str, key: str) -> tuple[str, str] | None:
        """(raw ref, content hash) of the first record that holds `key`, if any."""
        row = self._conn.execute(
            "SELECT raw_ref, content FROM raw_source_keys WHERE system = ? AND source_key = ?", (system, key)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def _resend_of(self, raw_ref: str) -> StoreOutcome:
        row = self._conn.execute(
            f"SELECT {_COLUMNS}, answer FROM raw_messages WHERE raw_ref = ?",  # nosec B608
            (raw_ref,),
        ).fetchone()
        self._conn.execute("UPDATE raw_messages SET resends = resends + 1 WHERE raw_ref = ?", (raw_ref,))
        answer = None if row[9] is None else bytes(row[9])
        return StoreOutcome(record=_record(row), duplicate=True, answer=answer)

    async def reopen(self, raw_ref: str, metadata: dict[str, str]) -> RawRecord:
        """Give a stored record the metadata of a corrected resend and queue it for translation again.

        For a request refused at the edge (e.g. a FHIR resource posted to the wrong endpoint) whose
        exact bytes come back in a correct request: the archive keeps one record per content, so
        the corrected request takes it over; the relay republishes it and the translator applies
        it (once: event ids are deterministic, and the earlier dead letters are resolved).
        """
        text = json.dumps(metadata, ensure_ascii=False, sort_keys=True)

        def write() -> RawRecord | None:
            self._conn.execute(
                "UPDATE raw_messages SET metadata = ?, published = 0, status = 'pending' WHERE raw_ref = ?",
                (text, raw_ref),
            )
            row = self._conn.execute(
                f"SELECT {_COLUMNS}, payload FROM raw_messages WHERE raw_ref = ?",  # nosec B608
                (raw_ref,),
            ).fetchone()
            if row is None:
                return None
            record = _record(row)
            # Back in the outbox: the relay takes it again (with its new metadata) from memory too.
            self.fresh.add([(record, None if row[9] is None else bytes(row[9]))])
            return record

        record = await self._run(write)
        if record is None:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive")
        return record

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

    # -- outbox
    async def unpublished(self, limit: int = 500) -> list[tuple[RawRecord, bytes | None]]:
        """Oldest records not yet on the raw topic; payload inline when small, else None (blob)."""

        def read() -> list[Any]:
            self.fresh.swept()  # under the write lock: what the feed dropped before now is read here
            return self._conn.execute(
                f"SELECT {_COLUMNS}, payload FROM raw_messages WHERE published = 0 ORDER BY seq LIMIT ?",  # nosec B608: column lists are our constants; values are bound
                (limit,),
            ).fetchall()

        rows = await self._run(read)
        return [(_record(r), None if r[9] is None else bytes(r[9])) for r in rows]

    async def mark_published(self, refs: Sequence[str]) -> None:
        rows = [(r,) for r in refs]
        await self._update(
            lambda conn: (
                conn.executemany("UPDATE raw_messages SET published = 1 WHERE raw_ref = ?", rows).rowcount
            )
        )

    # -- processing status (reconciliation: received = translated + dead_lettered + pending)
    async def set_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        """Statuses of a batch in one write riding on the next group commit (with the stores then)."""
        if not checked_statuses(updates):
            return
        now = self._clock().astimezone(UTC).isoformat()
        rows = [
            (
                u.status,
                u.events,
                u.failures,
                u.skipped,
                u.units,
                u.mapping_version,
                u.error,
                now,
                _tally(u.accounting),
                u.raw_ref,
            )
            for u in updates
        ]
        unknown: list[StatusUpdate] = []

        def write(conn: Any) -> int:
            unknown.clear()  # written again one by one if the batch's commit failed
            for row, u in zip(rows, updates, strict=True):
                if not conn.execute(
                    "UPDATE raw_messages SET status=?, events=?, failures=?, skipped=?, units=?,"
                    " mapping_version=?, error=?, processed_at=?, accounting=? WHERE raw_ref=?",
                    row,
                ).rowcount:
                    unknown.append(u)
            return len(rows) - len(unknown)

        await self._update(write)
        for u in unknown:
            # Not an error: with Kafka, a translator may work on a raw record another node archived
            # (its payload travelled on the raw topic). Raising would make that record a poison pill.
            logger.warning("raw_status_for_unknown_message", raw_ref=u.raw_ref, status=u.status)

    async def status(self, raw_ref: str) -> MessageStatus | None:
        row = await self._run(
            lambda: self._conn.execute(
                "SELECT raw_ref, status, events, failures, skipped, units, error, accounting"
                " FROM raw_messages WHERE raw_ref=?",
                (raw_ref,),
            ).fetchone()
        )
        return None if row is None else _status(row)

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

    # -- the message browser (GET /messages) and the readiness probe
    async def browse(self, query: RawQuery) -> tuple[list[RawSummary], int]:
        where, args = _browse_filter(query)
        if query.refs is not None and not query.refs:
            return [], 0

        def read() -> tuple[list[Any], int]:
            with self._lock:
                # SQLite binds at most 32766 values: a long ref list goes through a temp table.
                refs_join = ""
                if (
                    query.status not in (None, "translated")
                    and query.control_id is None
                    and query.refs is None
                ):
                    # Without statistics the planner takes the system index and reads every message
                    # of the system; the open ones (pending, dead-lettered) are few: read those.
                    refs_join = " INDEXED BY raw_messages_pending"
                if query.refs is not None:
                    self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS browse_refs (ref TEXT PRIMARY KEY)")
                    self._conn.execute("DELETE FROM browse_refs")
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO browse_refs VALUES (?)", [(r,) for r in query.refs]
                    )
                    refs_join = " JOIN browse_refs ON browse_refs.ref = raw_messages.raw_ref"
                sql_where = f"{refs_join} WHERE {where}"
                # Counted up to count_limit: an exact count of millions costs more than the page.
                total = self._conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM raw_messages{sql_where} LIMIT ?)",  # nosec B608: constant fragments; values are bound
                    (*args, query.count_limit),
                ).fetchone()[0]
                rows = self._conn.execute(
                    f"SELECT {_COLUMNS}, status, events, failures, error FROM raw_messages{sql_where}"  # nosec B608
                    " ORDER BY seq DESC LIMIT ? OFFSET ?",
                    (*args, query.limit, query.offset),
                ).fetchall()
                return rows, int(total)

        rows, total = await asyncio.to_thread(read)
        return [RawSummary(_record(r), r[9], r[10], r[11], r[12]) for r in rows], total

    async def writable(self) -> None:
        def probe() -> None:
            with self._lock:
                # Takes the write lock and gives it back: fails when the file or its disk cannot be written.
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("ROLLBACK")

        await asyncio.to_thread(probe)

    async def answer(self, raw_ref: str) -> bytes | None:
        row = await self._run(
            lambda: self._conn.execute(
                "SELECT answer FROM raw_messages WHERE raw_ref = ?", (raw_ref,)
            ).fetchone()
        )
        return None if row is None or row[0] is None else bytes(row[0])

    # -- channels (hub.ingest.channel_counts): counts kept by triggers, listeners as reported
    async def channel_counts(self) -> list[cc.ChannelCounts]:
        rows = await self._run(lambda: self._conn.execute(cc.SQLITE_SELECT_COUNTS).fetchall())
        return [cc.counts_from_row(tuple(r)) for r in rows]

    async def channel_minutes(self, since: datetime) -> list[cc.ChannelMinute]:
        """Per-minute counts from `since` on; rows past the kept window are pruned (once a minute)."""
        key = cc.minute_key(since)
        before = cc.prune_before(self._clock())

        def read() -> list[Any]:
            if before != self._pruned:
                self._conn.execute(cc.SQLITE_PRUNE, (before,))
                self._pruned = before
            return self._conn.execute(cc.SQLITE_SELECT_MINUTES, (key,)).fetchall()

        return [cc.minute_from_row(tuple(r)) for r in await self._run(read)]

    async def report_listeners(self, reports: Sequence[cc.ListenerReport]) -> None:
        rows = [
            (r.system, r.transport, r.node, r.state, r.detail, r.seen_at.astimezone(UTC).isoformat())
            for r in reports
        ]
        forget = (self._clock() - cc.LISTENER_FORGET).astimezone(UTC).isoformat()

        def write(conn: Any) -> int:
            conn.execute(cc.SQLITE_FORGET_LISTENERS, (forget,))  # processes gone for a day
            return int(conn.executemany(cc.SQLITE_REPORT_LISTENER, rows).rowcount)

        await self._update(write)

    async def channel_listeners(self) -> list[cc.ListenerReport]:
        rows = await self._run(lambda: self._conn.execute(cc.SQLITE_SELECT_LISTENERS).fetchall())
        return [cc.listener_from_row(tuple(r)) for r in rows]


def _browse_filter(query: RawQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (SQLite) of a browser query, with its bound values."""
    clauses = ["1=1"]
    args: list[Any] = []
    for column, value in (
        ("system", query.system),
        ("status", query.status),
        ("message_id", query.control_id),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if query.status is not None and query.status != "translated":
        # Spelled as the partial index raw_messages_pending is: the planner may then use it.
        clauses.append("status != 'translated'")
    if query.message_type is not None:
        clauses.append("json_extract(metadata, '$.message_type') = ?")
        clauses.append("json_extract(metadata, '$.message_type') IS NOT NULL")  # the partial index's own
        args.append(query.message_type)
    if query.received_from is not None:
        clauses.append("received_at >= ?")
        args.append(query.received_from.astimezone(UTC).isoformat())
    if query.received_to is not None:
        clauses.append("received_at < ?")
        args.append(query.received_to.astimezone(UTC).isoformat())
    if query.text:
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(message_id LIKE ? ESCAPE '\\' OR metadata LIKE ? ESCAPE '\\')")
        args.extend([pattern, pattern])
    return " AND ".join(clauses), args


def _tally(accounting: Mapping[str, Any] | None) -> str | None:
    """Field accounting as stored (JSON, keys sorted)."""
    return None if accounting is None else json.dumps(accounting, ensure_ascii=False, sort_keys=True)


def _status(row: Sequence[Any]) -> MessageStatus:
    """A status row: raw_ref, status, events, failures, skipped, units, error, accounting (JSON)."""
    raw_ref, status, events, failures, skipped, units, error, tally = row[:8]
    accounting = None if tally is None else dict(json.loads(tally))
    return MessageStatus(raw_ref, status, events, failures, skipped, units, error, accounting)
