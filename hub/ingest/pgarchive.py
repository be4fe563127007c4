"""Raw archive on PostgreSQL: what every node of a scaled-out site shares (HUB_ARCHIVE_URL).

The same port and contract as the SQLite archive (tests/contract/test_archive_contract.py runs
on both), with nothing kept on the node: payloads of any size are `bytea` rows (encrypted when
HUB_RAW_KEY is set, as on SQLite), so a translator on any node reads any message, including
the large exports that do not ride on the raw topic. Source-key dedup is a primary key: the
first writer of a key wins, on whichever node; a second writer waits for the first one's commit
and then sees it (READ COMMITTED), so a resend to two nodes at once is stored once.

The outbox is shared too. Each archive (each node) leases the unpublished rows it is about to
publish (`RELAY_LEASE_S`), so two relays do not publish the same backlog twice, and a node that
dies with a leased batch leaves it to another once the lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from hub.errors import ArchiveError
from hub.ingest import channel_counts as cc
from hub.ingest.archive import (
    META_CONFLICT_PARTS,
    META_RESENT_PARTS,
    STATUSES,
    GroupCommitArchive,
    _Pending,
    _Update,
    checked_statuses,
    format_parts,
)
from hub.pg import create_schema, pg_engine
from hub.ports import (
    MessageStatus,
    RawQuery,
    RawRecord,
    RawSummary,
    SourceKey,
    StatusUpdate,
    StoreOutcome,
)
from schemas.records import INLINE_PAYLOAD_LIMIT

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hub.ingest.crypto import RawCipher

logger = structlog.get_logger()
T = TypeVar("T")

RELAY_LEASE_S = 15.0  # how long a relay's claim on an unpublished batch keeps other nodes off it
DEADLOCK_RETRIES = 3  # two nodes claiming overlapping keys in another order: PostgreSQL aborts one

SCHEMA = """
CREATE TABLE IF NOT EXISTS hub_raw_messages (
    seq BIGSERIAL PRIMARY KEY,
    raw_ref TEXT NOT NULL UNIQUE,
    system TEXT NOT NULL,
    site TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    transport TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    metadata TEXT NOT NULL,
    payload BYTEA NOT NULL,
    published BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    status TEXT NOT NULL DEFAULT 'pending',
    events INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    units INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    mapping_version TEXT,
    processed_at TIMESTAMPTZ,
    resends INTEGER NOT NULL DEFAULT 0,
    accounting TEXT,
    answer BYTEA
);
-- Payloads are ciphertext or export files: compressing them buys little and costs CPU.
ALTER TABLE hub_raw_messages ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS hub_raw_source_keys (
    system TEXT NOT NULL,
    source_key TEXT NOT NULL,
    content TEXT NOT NULL,
    raw_ref TEXT NOT NULL,
    part INTEGER NOT NULL,
    PRIMARY KEY (system, source_key)
);
-- Added with field accounting: archives created before it gain the column here.
ALTER TABLE hub_raw_messages ADD COLUMN IF NOT EXISTS accounting TEXT;
CREATE INDEX IF NOT EXISTS hub_raw_messages_unpublished ON hub_raw_messages (seq) WHERE NOT published;
CREATE INDEX IF NOT EXISTS hub_raw_messages_pending ON hub_raw_messages (system, seq)
    WHERE status <> 'translated';
"""

# The message browser's indexes (GET /messages); see hub.ingest.archive.BROWSE_SCHEMA.
BROWSE_SCHEMA = """
CREATE INDEX IF NOT EXISTS hub_raw_messages_browse_system ON hub_raw_messages (system, seq);
CREATE INDEX IF NOT EXISTS hub_raw_messages_browse_id ON hub_raw_messages (message_id);
CREATE INDEX IF NOT EXISTS hub_raw_messages_browse_received ON hub_raw_messages (received_at);
CREATE INDEX IF NOT EXISTS hub_raw_messages_browse_type
    ON hub_raw_messages ((CAST(metadata AS jsonb) ->> 'message_type'), seq)
    WHERE (CAST(metadata AS jsonb) ->> 'message_type') IS NOT NULL;
"""

_COLUMNS = "raw_ref, system, site, message_id, sha256, size, transport, received_at, metadata"
_M_COLUMNS = ", ".join(f"m.{c}" for c in _COLUMNS.split(", "))


def _record(row: Sequence[Any]) -> RawRecord:
    raw_ref, system, site, message_id, sha, size, transport, received_at, metadata = row[:9]
    return RawRecord(
        raw_ref=raw_ref,
        system=system,
        site=site,
        message_id=message_id,
        sha256=sha,
        size=int(size),
        transport=transport,
        received_at=received_at.astimezone(UTC),
        metadata=json.loads(metadata),
    )


class _Known(Exception):
    """A message of a batch stored set-wise is known already: roll back, store one by one."""


def _all_distinct(batch: list[_Pending]) -> bool:
    """No message, and no source key, twice in the batch (else the set-wise store cannot tell them)."""
    refs = {p.ref for p in batch}
    keys = [(p.message.system, k.key) for p in batch for k in p.keys]
    return bool(batch) and len(refs) == len(batch) and len(set(keys)) == len(keys)


def _is_deadlock(exc: BaseException) -> bool:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in {"40P01", "40001"}  # deadlock_detected, serialization_failure


class PostgresRawArchive(GroupCommitArchive):
    """hub.ports.RawArchive on PostgreSQL, shared by every node that names the same database."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        cipher: RawCipher | None = None,
        max_bytes: int | None = None,
        lease_s: float = RELAY_LEASE_S,
    ) -> None:
        super().__init__(clock=clock, cipher=cipher, max_bytes=max_bytes)
        self._engine = pg_engine(url)
        self._lease = timedelta(seconds=lease_s)
        self._me = uuid.uuid4().hex  # this archive's name on the leases it takes
        self._closed = False
        create_schema(self._engine, SCHEMA)
        create_schema(self._engine, BROWSE_SCHEMA)
        create_schema(self._engine, cc.PG_SCHEMA + cc.PG_INSTALL)  # per-channel counts, kept by a trigger
        self._pruned = ""

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise ArchiveError("the raw archive is closed")
        return await asyncio.to_thread(fn)

    def _read(self, sql: str, params: dict[str, Any]) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def close(self) -> None:
        if self._closed:
            return
        if self._answers:  # answers still waiting for a commit to join: keep them
            answers, self._answers = self._answers, []
            try:
                self._store_batch([], answers, ())
            except (DBAPIError, OperationalError) as exc:
                logger.warning("archive_answers_not_kept", answers=len(answers), error=str(exc))
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._closed = True
        self._engine.dispose()

    # -- storing (one transaction per group commit)
    def _store_batch(
        self, batch: list[_Pending], answers: list[tuple[str, bytes]], updates: Sequence[_Update] = ()
    ) -> tuple[list[StoreOutcome], list[int]]:
        """One transaction for the batch (and `updates`, which this backend's own status writes do
        not use: they are statements of their own on a server that commits many at once).

        First as a few set-wise statements (every message new:
        the usual case, and each statement a round trip); when any message turns out to be known
        (a resend, a key held), again message by message, which sorts each one out."""
        fast = _all_distinct(batch)
        for attempt in range(1, DEADLOCK_RETRIES + 2):
            try:
                with self._engine.begin() as conn:
                    # Answers first: a resend in this same batch then finds the answer its first copy got.
                    if answers:
                        conn.execute(
                            text(
                                "UPDATE hub_raw_messages SET answer = :answer"
                                " WHERE raw_ref = :ref AND answer IS NULL"
                            ),
                            [{"answer": a, "ref": ref} for ref, a in answers],
                        )
                    outcomes = (
                        self._store_new(conn, batch) if fast else [self._store_one(conn, p) for p in batch]
                    )
                    return outcomes, [u.write(conn) for u in updates]
            except _Known:
                fast = False  # rolled back: the slow path, in a new transaction
            except DBAPIError as exc:
                if not _is_deadlock(exc) or attempt > DEADLOCK_RETRIES:
                    raise
                logger.info("archive_batch_retried", reason="deadlock", attempt=attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _store_new(self, conn: Connection, batch: list[_Pending]) -> list[StoreOutcome]:
        """Store a batch of messages none of which is known yet, in two statements; raise `_Known`
        (rolling the transaction back) when one is: a resend, or a key held by another record."""
        keys = [(p.message.system, k.key, k.content, p.ref, k.part) for p in batch for k in p.keys]
        if keys:
            claimed = conn.execute(
                text(
                    "INSERT INTO hub_raw_source_keys (system, source_key, content, raw_ref, part)"
                    " SELECT * FROM unnest(CAST(:s AS text[]), CAST(:k AS text[]), CAST(:c AS text[]),"
                    " CAST(:r AS text[]), CAST(:p AS int[])) ON CONFLICT DO NOTHING"
                ),
                dict(zip("skcrp", (list(col) for col in zip(*keys, strict=True)), strict=True)),
            ).rowcount
            if claimed != len(keys):
                raise _Known
        metadata = [json.dumps(dict(p.message.metadata), ensure_ascii=False, sort_keys=True) for p in batch]
        stored = conn.execute(
            text(
                "INSERT INTO hub_raw_messages (raw_ref, system, site, message_id, sha256, size, transport,"
                " received_at, metadata, payload, answer)"
                " SELECT * FROM unnest(CAST(:ref AS text[]), CAST(:system AS text[]), CAST(:site AS text[]),"
                " CAST(:mid AS text[]), CAST(:sha AS text[]), CAST(:size AS bigint[]),"
                " CAST(:transport AS text[]), CAST(:received AS timestamptz[]), CAST(:meta AS text[]),"
                " CAST(:payload AS bytea[]), CAST(:answer AS bytea[]))"
                " ON CONFLICT (raw_ref) DO NOTHING"
            ),
            {
                "ref": [p.ref for p in batch],
                "system": [p.message.system for p in batch],
                "site": [p.message.site for p in batch],
                "mid": [p.message.message_id for p in batch],
                "sha": [p.sha for p in batch],
                "size": [len(p.message.payload) for p in batch],
                "transport": [p.message.transport for p in batch],
                "received": [p.received for p in batch],
                "meta": metadata,
                "payload": [self._sealed(p) for p in batch],
                "answer": [p.answer for p in batch],
            },
        ).rowcount
        if stored != len(batch):
            raise _Known
        return [
            StoreOutcome(
                record=RawRecord(
                    raw_ref=p.ref,
                    system=p.message.system,
                    site=p.message.site,
                    message_id=p.message.message_id,
                    sha256=p.sha,
                    size=len(p.message.payload),
                    transport=p.message.transport,
                    received_at=p.received,
                    metadata=dict(p.message.metadata),
                )
            )
            for p in batch
        ]

    def _existing(self, conn: Connection, raw_ref: str) -> StoreOutcome | None:
        """The record already stored under `raw_ref` as a duplicate (its resend counted), if any."""
        row = conn.execute(
            text(
                f"UPDATE hub_raw_messages SET resends = resends + 1 WHERE raw_ref = :ref"  # nosec B608: constant column list
                f" RETURNING {_COLUMNS}, answer"
            ),
            {"ref": raw_ref},
        ).first()
        if row is None:
            return None
        return StoreOutcome(
            record=_record(row), duplicate=True, answer=None if row[9] is None else bytes(row[9])
        )

    def _owner(self, conn: Connection, system: str, key: str) -> tuple[str, str] | None:
        row = conn.execute(
            text("SELECT raw_ref, content FROM hub_raw_source_keys WHERE system = :s AND source_key = :k"),
            {"s": system, "k": key},
        ).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def _claim(self, conn: Connection, system: str, key: SourceKey, ref: str) -> bool:
        """Take `key` for `ref`; False when another record (maybe on another node) holds it."""
        row = conn.execute(
            text(
                "INSERT INTO hub_raw_source_keys (system, source_key, content, raw_ref, part)"
                " VALUES (:s, :k, :c, :r, :p) ON CONFLICT DO NOTHING RETURNING 1"
            ),
            {"s": system, "k": key.key, "c": key.content, "r": ref, "p": key.part},
        ).first()
        return row is not None

    def _claim_keys(
        self, conn: Connection, p: _Pending
    ) -> StoreOutcome | tuple[dict[int, str], dict[int, str]]:
        """Claim every source key of `p`: (resent parts, conflicting parts) with the refs holding
        them, or the first record's outcome when `p` is one message already received."""
        system = p.message.system
        resent: dict[int, str] = {}
        conflicts: dict[int, str] = {}
        for k in p.keys:
            if self._claim(conn, system, k, p.ref):
                continue
            # Held already: the insert waited for its holder's commit, so this read sees it.
            owner = self._owner(conn, system, k.key)
            if owner is None:  # pragma: no cover - a key row is never deleted
                raise ArchiveError(f"source key {k.key!r} of {system} vanished while claimed")
            if len(p.keys) == 1 and owner[1] == k.content:
                # The same message again with other bytes (line endings, another transport).
                resend = self._existing(conn, owner[0])
                if resend is None:  # pragma: no cover - the key and its record commit together
                    raise ArchiveError(f"source key {k.key!r} names {owner[0]}, which is not archived")
                return resend
            (resent if owner[1] == k.content else conflicts)[k.part] = owner[0]
        return resent, conflicts

    def _store_one(self, conn: Connection, p: _Pending) -> StoreOutcome:
        message = p.message
        existing = self._existing(conn, p.ref)
        if existing is not None:
            return existing
        claimed = self._claim_keys(conn, p)
        if isinstance(claimed, StoreOutcome):
            return claimed
        resent, conflicts = claimed
        conflict = conflicts.pop(p.keys[0].part) if len(p.keys) == 1 and conflicts else None
        meta = dict(message.metadata)
        if conflict is not None:
            meta["conflict_with"] = conflict  # travels with the record: translators must not use it
        if resent:
            meta[META_RESENT_PARTS] = format_parts(resent)
        if conflicts:
            meta[META_CONFLICT_PARTS] = format_parts(conflicts)
        inserted = conn.execute(
            text(
                "INSERT INTO hub_raw_messages (raw_ref, system, site, message_id, sha256, size, transport,"
                " received_at, metadata, payload, answer) VALUES (:ref, :system, :site, :mid, :sha,"
                " :size, :transport, :received, :meta, :payload, :answer)"
                " ON CONFLICT (raw_ref) DO NOTHING RETURNING seq"
            ),
            {
                "ref": p.ref,
                "system": message.system,
                "site": message.site,
                "mid": message.message_id,
                "sha": p.sha,
                "size": len(message.payload),
                "transport": message.transport,
                "received": p.received,
                "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True),
                "payload": self._sealed(p),
                "answer": p.answer,
            },
        ).first()
        if inserted is None:
            # Another node stored the same bytes between our look and our insert: a resend.
            again = self._existing(conn, p.ref)
            if again is None:  # pragma: no cover
                raise ArchiveError(f"{p.ref} conflicted on insert but is not archived")
            return again
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

    async def reopen(self, raw_ref: str, metadata: dict[str, str]) -> RawRecord:
        """Give a stored record a corrected resend's metadata and queue it for translation again."""
        meta = json.dumps(metadata, ensure_ascii=False, sort_keys=True)

        def write() -> None:
            with self._engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE hub_raw_messages SET metadata = :meta, published = FALSE, lease_owner = NULL,"
                        " lease_until = NULL, status = 'pending' WHERE raw_ref = :ref"
                    ),
                    {"meta": meta, "ref": raw_ref},
                )

        await self._run(write)
        return await self.get(raw_ref)

    async def save_answer(self, raw_ref: str, answer: bytes) -> None:
        def write() -> int:
            with self._engine.begin() as conn:
                return conn.execute(
                    text("UPDATE hub_raw_messages SET answer = :a WHERE raw_ref = :ref"),
                    {"a": answer, "ref": raw_ref},
                ).rowcount

        if await self._run(write) == 0:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive to save an answer for")

    # -- reading
    async def get(self, raw_ref: str) -> RawRecord:
        rows = await self._run(
            lambda: self._read(
                f"SELECT {_COLUMNS} FROM hub_raw_messages WHERE raw_ref = :ref",  # nosec B608: constant columns
                {"ref": raw_ref},
            )
        )
        if not rows:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive")
        return _record(rows[0])

    async def payload(self, raw_ref: str) -> bytes:
        rows = await self._run(
            lambda: self._read("SELECT payload FROM hub_raw_messages WHERE raw_ref = :ref", {"ref": raw_ref})
        )
        if not rows:
            raise ArchiveError(f"no raw message {raw_ref!r} in the archive")
        return self.reveal(raw_ref, bytes(rows[0][0]))

    # -- outbox, shared by the relays of every node
    async def unpublished(self, limit: int = 500) -> list[tuple[RawRecord, bytes | None]]:
        """Oldest records not yet on the raw topic that no other node is publishing right now.

        The batch is leased to this archive: another node's relay skips it until the lease ends
        (it publishes it then, if this node died before `mark_published`). Asked again, this
        archive gets its own leased rows back, oldest first.
        """
        now = self._clock().astimezone(UTC)

        def claim() -> list[Any]:
            with self._engine.begin() as conn:
                return list(
                    conn.execute(
                        text(
                            "UPDATE hub_raw_messages m SET lease_owner = :me, lease_until = :until"
                            " FROM (SELECT seq FROM hub_raw_messages WHERE NOT published"
                            "   AND (lease_owner IS NULL OR lease_owner = :me OR lease_until < :now)"
                            "   ORDER BY seq LIMIT :limit FOR UPDATE SKIP LOCKED) todo"
                            f" WHERE m.seq = todo.seq RETURNING m.seq, {_M_COLUMNS},"  # nosec B608: constants
                            " CASE WHEN m.size <= :inline THEN m.payload END"
                        ),
                        {
                            "me": self._me,
                            "until": now + self._lease,
                            "now": now,
                            "limit": limit,
                            "inline": INLINE_PAYLOAD_LIMIT,  # larger ones do not ride on the raw topic
                        },
                    ).all()
                )

        rows = sorted(await self._run(claim), key=lambda r: r[0])
        return [(_record(r[1:]), None if r[10] is None else bytes(r[10])) for r in rows]

    async def mark_published(self, refs: Sequence[str]) -> None:
        def write() -> None:
            with self._engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE hub_raw_messages SET published = TRUE, lease_owner = NULL, lease_until = NULL"
                        " WHERE raw_ref = ANY(:refs)"
                    ),
                    {"refs": list(refs)},
                )

        await self._run(write)

    # -- processing status
    async def set_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        """Statuses of a batch in one transaction."""
        if not checked_statuses(updates):
            return
        now = self._clock().astimezone(UTC)
        params = [
            {
                "status": u.status,
                "events": u.events,
                "failures": u.failures,
                "skipped": u.skipped,
                "units": u.units,
                "mv": u.mapping_version,
                "error": u.error,
                "tally": None if u.accounting is None else json.dumps(u.accounting, ensure_ascii=False),
                "now": now,
                "ref": u.raw_ref,
            }
            for u in updates
        ]

        def write() -> list[int]:
            with self._engine.begin() as conn:
                return [
                    conn.execute(
                        text(
                            "UPDATE hub_raw_messages SET status = :status, events = :events,"
                            " failures = :failures, skipped = :skipped, units = :units,"
                            " mapping_version = :mv, error = :error, accounting = :tally,"
                            " processed_at = :now WHERE raw_ref = :ref"
                        ),
                        one,
                    ).rowcount
                    for one in params
                ]

        for u, updated in zip(updates, await self._run(write), strict=True):
            if updated == 0:
                logger.warning("raw_status_for_unknown_message", raw_ref=u.raw_ref, status=u.status)

    async def status(self, raw_ref: str) -> MessageStatus | None:
        rows = await self._run(
            lambda: self._read(
                "SELECT raw_ref, status, events, failures, skipped, units, error, accounting"
                " FROM hub_raw_messages WHERE raw_ref = :ref",
                {"ref": raw_ref},
            )
        )
        return None if not rows else _status(rows[0])

    async def reconciliation(self) -> dict[str, dict[str, int]]:
        """Per system: received, translated, dead_lettered, pending, resends, events, rows failed, skipped."""
        rows = await self._run(
            lambda: self._read(
                "SELECT system, status, count(*), sum(resends), sum(events), sum(failures), sum(skipped)"
                " FROM hub_raw_messages GROUP BY system, status",
                {},
            )
        )
        out: dict[str, dict[str, int]] = {}
        for system, status, n, resends, events, failures, skipped in rows:
            entry = out.setdefault(
                system,
                dict.fromkeys(("received", *STATUSES, "resends", "events", "rows_failed", "rows_skipped"), 0),
            )
            entry["received"] += int(n)
            entry[status] += int(n)
            entry["resends"] += int(resends or 0)
            entry["events"] += int(events or 0)
            entry["rows_failed"] += int(failures or 0)
            entry["rows_skipped"] += int(skipped or 0)
        return out

    async def refs_with_status(self, status: str, system: str | None = None) -> list[str]:
        sql = (
            "SELECT raw_ref FROM hub_raw_messages WHERE status = :status"
            " AND (CAST(:system AS text) IS NULL OR system = :system) ORDER BY seq"
        )
        rows = await self._run(lambda: self._read(sql, {"status": status, "system": system or None}))
        return [str(r[0]) for r in rows]

    # -- the message browser (GET /messages) and the readiness probe
    async def browse(self, query: RawQuery) -> tuple[list[RawSummary], int]:
        if query.refs is not None and not query.refs:
            return [], 0
        where, params = _browse_filter(query)

        def read() -> tuple[list[Any], int]:
            with self._engine.connect() as conn:
                # Counted up to count_limit: an exact count of millions costs more than the page.
                # The WHERE is built from constant fragments; every value is bound.
                count_sql = (
                    f"SELECT count(*) FROM (SELECT 1 FROM hub_raw_messages WHERE {where} LIMIT :cap) AS m"  # nosec B608
                )
                total = conn.execute(
                    text(count_sql),
                    {**params, "cap": query.count_limit},
                ).scalar_one()
                rows = conn.execute(
                    text(
                        f"SELECT {_COLUMNS}, status, events, failures, error FROM hub_raw_messages"  # nosec B608
                        f" WHERE {where} ORDER BY seq DESC LIMIT :limit OFFSET :offset"
                    ),
                    params,
                ).all()
                return list(rows), int(total)

        rows, total = await self._run(read)
        return [RawSummary(_record(r), str(r[9]), int(r[10]), int(r[11]), r[12]) for r in rows], total

    # -- channels (hub.ingest.channel_counts): counts kept by a trigger, listeners as reported
    async def channel_counts(self) -> list[cc.ChannelCounts]:
        rows = await self._run(lambda: self._read(cc.PG_SELECT_COUNTS, {}))
        return [cc.counts_from_row(tuple(r)) for r in rows]

    async def channel_minutes(self, since: datetime) -> list[cc.ChannelMinute]:
        """Per-minute counts from `since` on; rows past the kept window are pruned (once a minute)."""
        key = cc.minute_key(since)
        before = cc.prune_before(self._clock())

        def read() -> list[Any]:
            if before != self._pruned:
                with self._engine.begin() as conn:
                    conn.execute(text(cc.PG_PRUNE), {"before": before})
                self._pruned = before
            return self._read(cc.PG_SELECT_MINUTES, {"since": key})

        return [cc.minute_from_row(tuple(r)) for r in await self._run(read)]

    async def report_listeners(self, reports: Sequence[cc.ListenerReport]) -> None:
        rows = [
            {
                "system": r.system,
                "transport": r.transport,
                "node": r.node,
                "state": r.state,
                "detail": r.detail,
                "seen_at": r.seen_at,
            }
            for r in reports
        ]

        forget = self._clock() - cc.LISTENER_FORGET

        def write() -> None:
            with self._engine.begin() as conn:
                conn.execute(text(cc.PG_FORGET_LISTENERS), {"before": forget})  # processes gone for a day
                conn.execute(text(cc.PG_REPORT_LISTENER), rows)

        if rows:
            await self._run(write)

    async def channel_listeners(self) -> list[cc.ListenerReport]:
        rows = await self._run(lambda: self._read(cc.PG_SELECT_LISTENERS, {}))
        return [cc.listener_from_row(tuple(r)) for r in rows]

    async def writable(self) -> None:
        def probe() -> None:
            with self._engine.connect() as conn:
                # A read-write transaction: fails when the server is gone or in recovery / read-only.
                conn.execute(text("SELECT txid_current()"))
                conn.rollback()

        await self._run(probe)

    async def answer(self, raw_ref: str) -> bytes | None:
        rows = await self._run(
            lambda: self._read("SELECT answer FROM hub_raw_messages WHERE raw_ref = :ref", {"ref": raw_ref})
        )
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])


def _browse_filter(query: RawQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (PostgreSQL) of a browser query, with its bound values."""
    clauses = ["TRUE"]
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
    for column, value in (
        ("system", query.system),
        ("status", query.status),
        ("message_id", query.control_id),
    ):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if query.status is not None and query.status != "translated":
        clauses.append("status <> 'translated'")  # as hub_raw_messages_pending says: it may be used
    if query.message_type is not None:
        clauses.append("(CAST(metadata AS jsonb) ->> 'message_type') = :message_type")
        clauses.append("(CAST(metadata AS jsonb) ->> 'message_type') IS NOT NULL")
        params["message_type"] = query.message_type
    if query.received_from is not None:
        clauses.append("received_at >= :received_from")
        params["received_from"] = query.received_from
    if query.received_to is not None:
        clauses.append("received_at < :received_to")
        params["received_to"] = query.received_to
    if query.text:
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(message_id LIKE :pattern OR metadata LIKE :pattern)")
        params["pattern"] = pattern
    if query.refs is not None:
        clauses.append("raw_ref = ANY(:refs)")
        params["refs"] = list(query.refs)
    return " AND ".join(clauses), params


def _status(row: Sequence[Any]) -> MessageStatus:
    """A status row: raw_ref, status, events, failures, skipped, units, error, accounting (JSON)."""
    raw_ref, status, events, failures, skipped, units, error, tally = row[:8]
    accounting = None if tally is None else dict(json.loads(tally))
    return MessageStatus(raw_ref, status, events, failures, skipped, units, error, accounting)
