"""Read-model database engines: SQLite (default, one file) or PostgreSQL.

Read models use SQLAlchemy 2 Core with *synchronous* engines (sqlite3 / psycopg 3). Projection
apply is CPU-bound batch work: fold a batch in memory, then a few batched upserts. Sync Core with
executemany / insertmanyvalues is the fastest path on both databases, and the async side of the
hub only ever calls it through `asyncio.to_thread`; FastAPI runs sync endpoints in its
threadpool. An async driver would add a hop per statement and buy nothing here.

SQLite specifics, and why:
- `journal_mode=WAL`: the API reads while a projection writes.
- `synchronous=FULL`: an applied batch (read model + tracking row) survives a power cut, so the
  exactly-once bookkeeping never runs ahead of what is on disk.
- `busy_timeout`: several projection runners share one file; a writer waits rather than fails.
- pysqlite's own transaction handling is switched off and `BEGIN` is emitted by us, so a
  transaction starts at its first statement (reads included). Writers (see `write_transaction`)
  use `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes fails with
  SQLITE_BUSY_SNAPSHOT when another runner committed in between, which busy_timeout cannot help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy import Connection

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5
_WRITE_OPTION = "hub_write"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A synchronous engine for read models; `url` like `sqlite:///path` or `postgresql+psycopg://...`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql":
        # An unreachable server should fail a health check in seconds, not hang it.
        kwargs.setdefault("connect_args", {"connect_timeout": PG_CONNECT_TIMEOUT_S})
    return create_engine(url, **kwargs)


def write_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """`engine.begin()` for a writer: on SQLite the transaction takes the write lock up front."""
    return engine.execution_options(**{_WRITE_OPTION: True}).begin()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite: it would otherwise run reads outside
        # any transaction and BEGIN only before the first write.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = bool(conn.get_execution_options().get(_WRITE_OPTION))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
