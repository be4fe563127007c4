"""Webhook subscriptions at rest: table `hub_subscriptions` in the read-model database, secrets encrypted."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from hub.errors import ArchiveError
from hub.ingest.crypto import RawCipher
from projections.runtime.db import write_transaction
from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy import Engine, Row


logger = structlog.get_logger()


Status = Literal["active", "paused", "deleted"]
StartOffsets = dict[str, dict[str, int]]  # catalogue topic -> partition (as text) -> first offset

KEY_LABEL = b"hub.webhooks.signing-secret.v1\x00"
MAX_ERROR_CHARS = 500

METADATA = MetaData()
subscriptions_table = Table(
    "hub_subscriptions",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("topics", JSON, nullable=False),
    Column("types", JSON, nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_changed_at", UtcDateTime(), nullable=False),
    Column("secret_encrypted", LargeBinary),  # NULL once deleted
    Column("start_offsets", JSON, nullable=False),
    Column("last_event_id", String(64)),
    Column("last_delivered_at", UtcDateTime()),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_error", String(MAX_ERROR_CHARS)),
    Column("last_attempt_at", UtcDateTime()),
)
# The secret a rotation replaced: it still signs, beside the new one, until `valid_until`.
previous_secrets_table = Table(
    "hub_webhook_previous_secrets",
    METADATA,
    Column("subscription_id", String(32), primary_key=True),
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("valid_until", UtcDateTime(), nullable=False),
    Column("rotated_at", UtcDateTime(), nullable=False),
)


def subscription_key(secret_bytes: bytes) -> bytes:
    """The AES key that encrypts signing secrets, derived from HUB_SECRET_KEY."""
    return hashlib.sha256(KEY_LABEL + secret_bytes).digest()


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as the API shows it: everything but the secret."""

    id: str
    url: str
    topics: tuple[str, ...]
    types: tuple[str, ...]
    description: str
    created_by: str
    created_at: datetime
    status: Status
    status_changed_at: datetime
    start_offsets: StartOffsets
    last_event_id: str | None
    last_delivered_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_attempt_at: datetime | None

    @property
    def group(self) -> str:
        return f"webhook.{self.id}"

    def start(self, topic: str, partition: int) -> int:
        """First offset to deliver; partitions created after the subscription start at 0."""
        return self.start_offsets.get(topic, {}).get(str(partition), 0)


class SubscriptionStore:
    """Subscriptions in the read-model database. Synchronous: async callers use `asyncio.to_thread`."""

    def __init__(self, engine: Engine, key: bytes) -> None:
        self._engine = engine
        self._cipher = RawCipher(key)
        self._ready = False
        self._ready_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine

    def ensure_tables(self) -> None:
        """Create the table once per store; several nodes (or threads) may race to create it."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                METADATA.create_all(self._engine, checkfirst=True)
            except DBAPIError:
                # PostgreSQL: another process created it between the check and the CREATE.
                if not inspect(self._engine).has_table(subscriptions_table.name):
                    raise
            self._ready = True

    def create(
        self,
        *,
        url: str,
        topics: Sequence[str],
        types: Sequence[str],
        description: str,
        created_by: str,
        start_offsets: StartOffsets,
        sub_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Subscription, str]:
        """A new active subscription and its signing secret (returned once, stored encrypted)."""
        self.ensure_tables()
        sub_id = sub_id or new_subscription_id()
        secret = "whsec_" + secrets.token_urlsafe(32)
        at = now or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            conn.execute(
                insert(subscriptions_table).values(
                    id=sub_id,
                    url=url,
                    topics=list(topics),
                    types=list(types),
                    description=description,
                    created_by=created_by,
                    created_at=at,
                    status="active",
                    status_changed_at=at,
                    secret_encrypted=self._cipher.encrypt(secret.encode(), context=_context(sub_id)),
                    start_offsets=start_offsets,
                    consecutive_failures=0,
                )
            )
        logger.info("subscription_created", subscription=sub_id, created_by=created_by, topics=list(topics))
        found = self.get(sub_id)
        if found is None:  # pragma: no cover - the row was just committed
            raise RuntimeError(f"subscription {sub_id} vanished after insert")
        return found, secret

    def get(self, sub_id: str) -> Subscription | None:
        """The subscription, deleted ones included (callers decide what a deleted one answers)."""
        self.ensure_tables()
        with self._engine.connect() as conn:
            row = conn.execute(select(subscriptions_table).where(subscriptions_table.c.id == sub_id)).first()
        return None if row is None else _subscription(row)

    def list(
        self, *, created_by: str | None = None, statuses: Iterable[Status] = ("active", "paused")
    ) -> list[Subscription]:
        self.ensure_tables()
        t = subscriptions_table
        query = select(t).where(t.c.status.in_(list(statuses))).order_by(t.c.created_at, t.c.id)
        if created_by is not None:
            query = query.where(t.c.created_by == created_by)
        with self._engine.connect() as conn:
            return [_subscription(r) for r in conn.execute(query)]

    def set_status(self, sub_id: str, status: Status, now: datetime | None = None) -> Subscription | None:
        """Pause, resume or delete; a deleted subscription stays deleted and forgets its secret."""
        t = subscriptions_table
        values: dict[str, Any] = {"status": status, "status_changed_at": now or datetime.now(UTC)}
        if status == "deleted":
            values["secret_encrypted"] = None
        with write_transaction(self._engine) as conn:
            if status == "deleted":
                p = previous_secrets_table
                conn.execute(delete(p).where(p.c.subscription_id == sub_id))
            changed = conn.execute(
                update(t)
                .where(t.c.id == sub_id, t.c.status != "deleted", t.c.status != status)
                .values(**values)
            ).rowcount
        if changed:
            logger.info("subscription_status_changed", subscription=sub_id, status=status)
        return self.get(sub_id)

    def set_description(self, sub_id: str, description: str) -> None:
        t = subscriptions_table
        with write_transaction(self._engine) as conn:
            conn.execute(update(t).where(t.c.id == sub_id).values(description=description))

    def secret(self, sub_id: str) -> str:
        """The signing secret; raises ArchiveError when it is gone or does not decrypt with this key."""
        with self._engine.connect() as conn:
            stored = conn.execute(
                select(subscriptions_table.c.secret_encrypted).where(subscriptions_table.c.id == sub_id)
            ).scalar_one_or_none()
        if stored is None:
            raise ArchiveError(f"subscription {sub_id} has no signing secret (deleted)")
        return self._cipher.decrypt(stored, context=_context(sub_id)).decode()

    def rotate_secret(self, sub_id: str, overlap: timedelta, now: datetime | None = None) -> str:
        """A new signing secret (returned once); the old one keeps signing until now + `overlap`.

        Both are sent during the overlap (`X-Hub-Signature-256: sha256=<new>, sha256=<old>`), so a
        receiver can switch to the new secret at any moment within it. Rotating again during an
        overlap replaces the previous secret: only the last two ever sign.
        """
        at = now or datetime.now(UTC)
        old = self.secret(sub_id)  # ArchiveError when deleted or unreadable: nothing to rotate from
        new = "whsec_" + secrets.token_urlsafe(32)
        t, p = subscriptions_table, previous_secrets_table
        with write_transaction(self._engine) as conn:
            conn.execute(delete(p).where(p.c.subscription_id == sub_id))
            if overlap > timedelta(0):
                conn.execute(
                    insert(p).values(
                        subscription_id=sub_id,
                        secret_encrypted=self._cipher.encrypt(
                            old.encode(), context=_previous_context(sub_id)
                        ),
                        valid_until=at + overlap,
                        rotated_at=at,
                    )
                )
            conn.execute(
                update(t)
                .where(t.c.id == sub_id)
                .values(secret_encrypted=self._cipher.encrypt(new.encode(), context=_context(sub_id)))
            )
        logger.info("subscription_secret_rotated", subscription=sub_id, overlap_s=overlap.total_seconds())
        return new

    def signing_secrets(
        self, sub_id: str, now: datetime | None = None
    ) -> tuple[str, tuple[str, datetime] | None]:
        """The current secret, and the previous one with the end of its overlap while it lasts."""
        current = self.secret(sub_id)
        at = now or datetime.now(UTC)
        p = previous_secrets_table
        with self._engine.connect() as conn:
            row = conn.execute(select(p).where(p.c.subscription_id == sub_id)).first()
        if row is None or row.valid_until <= at:
            return current, None
        previous = self._cipher.decrypt(row.secret_encrypted, context=_previous_context(sub_id)).decode()
        return current, (previous, row.valid_until)

    def record_success(self, sub_id: str, event_id: str | None, at: datetime, failures: int = 0) -> None:
        """An event was delivered; `failures`: still counting when an event of another partition fails."""
        t = subscriptions_table
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id == sub_id)
                .values(
                    last_event_id=event_id,
                    last_delivered_at=at,
                    last_attempt_at=at,
                    consecutive_failures=failures,
                )
            )

    def record_failure(self, sub_id: str, error: str, at: datetime, failures: int | None = None) -> None:
        """A delivery failed; `failures` is the worker's count of consecutive failures (None: add one)."""
        t = subscriptions_table
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id == sub_id)
                .values(
                    last_error=error[:MAX_ERROR_CHARS],
                    last_attempt_at=at,
                    consecutive_failures=t.c.consecutive_failures + 1 if failures is None else failures,
                )
            )


def new_subscription_id() -> str:
    return secrets.token_hex(8)


def _context(sub_id: str) -> bytes:
    # Authenticated with the ciphertext: a secret copied onto another row does not decrypt.
    return f"hub_subscriptions:{sub_id}".encode()


def _previous_context(sub_id: str) -> bytes:
    return f"hub_webhook_previous_secrets:{sub_id}".encode()


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        topics=tuple(row.topics),
        types=tuple(row.types),
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        status=row.status,
        status_changed_at=row.status_changed_at,
        start_offsets={t: {p: int(o) for p, o in parts.items()} for t, parts in row.start_offsets.items()},
        last_event_id=row.last_event_id,
        last_delivered_at=row.last_delivered_at,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
    )


# --- delivery ------------------------------------------------------------------------------------
