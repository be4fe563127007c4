"""Reporting keys: what a device label carries so a nurse can report a fault without a login.

One active key per department. The key a label prints is `<key id>.<secret>`, where the secret is
an HMAC of (key id, department) under a key derived from HUB_SECRET_KEY: nothing secret is stored,
labels can be reprinted at any time with the same key, and a stolen database does not yield one.

A reporting key is not an API key: it opens only the scan page (`/r/<asset id>`) of its
department's devices and files reports there; it reads no other route. Rotation
(`hub keys rotate-report --department D`, e.g. when labels were photographed and shared) mints a
new key id; the old one keeps working for the grace period given (default 0: at once), so a ward
can swap its labels in an afternoon. Changing HUB_SECRET_KEY invalidates every label.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Column, MetaData, String, Table, insert, select, update

from projections.runtime.db import write_transaction
from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from sqlalchemy import Engine, Row

logger = structlog.get_logger()

METADATA = MetaData()
report_keys = Table(
    "hub_report_keys",
    METADATA,
    Column("key_id", String(16), primary_key=True),
    Column("department", String(200), nullable=False, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # Set when a rotation replaced the key: it works until then (the grace period), never after.
    Column("valid_until", UtcDateTime()),
)
SECRET_BYTES = 12  # 96 bits: short enough for a small QR code, far beyond online guessing


class InvalidReportKeyError(Exception):
    """A label's key is malformed, unknown or rotated out; `reason` says which."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_id = key_id


@dataclass(frozen=True, slots=True)
class ReportKey:
    key_id: str
    department: str
    created_at: datetime
    valid_until: datetime | None

    def active(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


def label_secret_key(secret: bytes) -> bytes:
    """The key the labels' secrets are derived under (HUB_SECRET_KEY, separated by purpose)."""
    return hmac.new(secret, b"hub.scan.report-key.v1", hashlib.sha256).digest()


class ReportKeyStore:
    """Reporting keys in the read-model database (every API node sees the same ones)."""

    def __init__(self, engine: Engine, secret: bytes) -> None:
        self._engine = engine
        self._key = label_secret_key(secret)

    def ensure_tables(self) -> None:
        METADATA.create_all(self._engine, checkfirst=True)

    def token(self, key: ReportKey) -> str:
        """What the label prints: `<key id>.<secret>`."""
        message = f"{key.key_id}\n{key.department}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:SECRET_BYTES]
        return f"{key.key_id}.{digest.hex()}"

    def current(self, department: str, now: datetime | None = None) -> ReportKey:
        """The department's active key (never rotated out), created on first use."""
        self.ensure_tables()
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(report_keys)
                .where(report_keys.c.department == department, report_keys.c.valid_until.is_(None))
                .order_by(report_keys.c.created_at.desc())
            ).first()
            if row is not None:
                return _key(row)
            return self._insert(conn, department, now or datetime.now(UTC))

    def rotate(
        self, department: str, *, grace: timedelta = timedelta(0), now: datetime | None = None
    ) -> ReportKey:
        """A new key for `department`; the previous ones stop working after `grace`."""
        self.ensure_tables()
        now = now or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(report_keys)
                .where(report_keys.c.department == department, report_keys.c.valid_until.is_(None))
                .values(valid_until=now + grace)
            )
            key = self._insert(conn, department, now)
        logger.info(
            "report_key_rotated", department=department, key_id=key.key_id, grace_s=grace.total_seconds()
        )
        return key

    def _insert(self, conn: object, department: str, now: datetime) -> ReportKey:
        key = ReportKey(key_id=secrets.token_hex(4), department=department, created_at=now, valid_until=None)
        conn.execute(  # type: ignore[attr-defined]
            insert(report_keys).values(key_id=key.key_id, department=department, created_at=now)
        )
        return key

    def list(self) -> list[ReportKey]:
        self.ensure_tables()
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(report_keys).order_by(report_keys.c.department, report_keys.c.created_at)
            )
            return [_key(r) for r in rows]

    def authenticate(self, token: str, now: datetime) -> ReportKey:
        """The key a label's token stands for; raises InvalidReportKeyError saying why not."""
        key_id, _, secret = token.strip().partition(".")
        if not (key_id.isalnum() and len(key_id) <= 16 and len(secret) == 2 * SECRET_BYTES):
            raise InvalidReportKeyError("malformed reporting key")
        with self._engine.connect() as conn:
            row = conn.execute(select(report_keys).where(report_keys.c.key_id == key_id)).first()
        if row is None:
            raise InvalidReportKeyError("unknown reporting key", key_id)
        key = _key(row)
        if not hmac.compare_digest(self.token(key), f"{key_id}.{secret}"):
            raise InvalidReportKeyError("unknown reporting key", key_id)
        if not key.active(now):
            raise InvalidReportKeyError("reporting key rotated out: the label needs reprinting", key_id)
        return key


def _key(row: Row[tuple[object, ...]]) -> ReportKey:
    return ReportKey(
        key_id=row.key_id, department=row.department, created_at=row.created_at, valid_until=row.valid_until
    )
