"""PostgreSQL for the benchmarks: HUB_TEST_PG_URL or the local server; a fresh database per run."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_server() -> str | None:
    """The server URL, or None when nothing answers (the caller reports a skip)."""
    url = os.environ.get("HUB_TEST_PG_URL", PG_DEFAULT)
    try:
        probe = create_engine(url, connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception:  # any driver error means "no server here"; reported as a skip
        return None
    return url


def fresh_pg_database(server: str) -> tuple[str, Engine]:
    """A new empty database on `server`: its URL, and the admin engine that drops it."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(server).set(database=name).render_as_string(hide_password=False), admin


def drop_pg_database(url: str, admin: Engine) -> None:
    name = make_url(url).database
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
