"""Opening the hub's own PostgreSQL tables (raw archive, dead letters) shared by every node."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from hub.errors import ConfigError

CONNECT_TIMEOUT_S = 5  # an unreachable server fails a store (NotStored) in seconds, not minutes
_SCHEMA_LOCK = 0x4855_4241  # advisory lock id: nodes starting together create the tables once


def pg_engine(url: str) -> Engine:
    """A psycopg 3 engine for `url` (`postgresql://` is read as `postgresql+psycopg://`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"HUB_ARCHIVE_URL must be a PostgreSQL URL, not {parsed.get_backend_name()!r}")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def create_schema(engine: Engine, ddl: str) -> None:
    """Run `ddl` once even when several nodes start at the same moment (an advisory lock)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK})
        conn.exec_driver_sql(ddl)
