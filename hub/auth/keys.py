"""API keys: created once by `hub keys create`, shown once, stored only as a SHA-256 of the secret.

A key reads `hub_<key id>_<secret>`. The key id is public (it is what logs, the audit ledger and
`hub keys list` show); the secret is 32 random bytes, so a plain SHA-256 is enough to make a
stolen database useless for logging in (no password-style stretching needed: there is nothing to
guess). Keys live in the read-model database (HUB_DB_URL), so every API node of a deployment
sees the same keys and a revocation takes effect on the next request everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Column, MetaData, String, Table, insert, select, update

from hub.auth.roles import Principal, Role
from projections.runtime.db import write_transaction
from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from sqlalchemy import Engine, Row

logger = structlog.get_logger()

PREFIX = "hub"
METADATA = MetaData()
api_keys = Table(
    "hub_api_keys",
    METADATA,
    Column("key_id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("department", String(200)),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
)


class InvalidKeyError(Exception):
    """A presented key is malformed, unknown, revoked or expired; `reason` says which (never the secret)."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_id = key_id


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as `hub keys list` shows it: everything but the secret."""

    key_id: str
    role: Role
    department: str | None
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    """(key id, secret) of `hub_<key id>_<secret>`; raises InvalidKeyError for anything else."""
    prefix, _, rest = token.strip().partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id.isalnum() or len(secret) < 16:
        raise InvalidKeyError("malformed API key (expected hub_<key id>_<secret>)")
    return key_id, secret


class KeyStore:
    """API keys in the read-model database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ensure_tables(self) -> None:
        METADATA.create_all(self._engine, checkfirst=True)

    def create(
        self,
        role: Role,
        *,
        department: str | None = None,
        label: str = "",
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[KeyInfo, str]:
        """A new key: its info, and the token to hand over (shown once, never stored)."""
        self.ensure_tables()
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        info = KeyInfo(
            key_id=key_id,
            role=role,
            department=department or None,
            label=label,
            created_at=now or datetime.now(UTC),
            expires_at=expires_at,
            revoked_at=None,
        )
        with write_transaction(self._engine) as conn:
            conn.execute(
                insert(api_keys).values(
                    key_id=key_id,
                    secret_sha256=_digest(secret),
                    role=role.value,
                    department=info.department,
                    label=label,
                    created_at=info.created_at,
                    expires_at=expires_at,
                )
            )
        logger.info("api_key_created", key_id=key_id, role=role.value, department=info.department)
        return info, f"{PREFIX}_{key_id}_{secret}"

    def authenticate(self, token: str, now: datetime | None = None) -> Principal:
        """The principal a token stands for; raises InvalidKeyError saying why not."""
        key_id, secret = split_token(token)
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            raise InvalidKeyError("unknown API key", key_id)
        info = _info(row)
        state = info.state(now or datetime.now(UTC))
        if state != "active":
            raise InvalidKeyError(f"API key {state}", key_id)
        return Principal(key_id=key_id, role=info.role, department=info.department, label=info.label)

    def list(self) -> list[KeyInfo]:
        self.ensure_tables()
        with self._engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)).all()
        return [_info(r) for r in rows]

    def revoke(self, key_id: str, now: datetime | None = None) -> bool:
        """Revoke a key; False when there is no such key (revoking twice keeps the first time)."""
        self.ensure_tables()
        with write_transaction(self._engine) as conn:
            found = conn.execute(select(api_keys.c.key_id).where(api_keys.c.key_id == key_id)).first()
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now or datetime.now(UTC))
            )
        if found is not None:
            logger.info("api_key_revoked", key_id=key_id)
        return found is not None


def _info(row: Row[tuple[object, ...]]) -> KeyInfo:
    return KeyInfo(
        key_id=row.key_id,
        role=Role(row.role),
        department=row.department,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
