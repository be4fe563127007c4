"""Read-model database engines: SQLite (default, one file) or PostgreSQL.

Read models use SQLAlchemy 2 Core with *synchronous* engines (sqlite3 / psycopg 3). Projection
apply is CPU-bound batch work: fold a batch in memory, then a few batched upserts. Sync Core with
executemany / insertmanyvalues is the fastest path on both databases, and the async side of the
hub only ever calls it through `asyncio.to_thread`; FastAPI runs sync endpoints in its
threadpool. An async driver would add a hop per statement and buy nothing here.

SQLite specifics, and why:
- `journal_mode=WAL`: the API reads while a projection writes.
- `synchronous=FULL` by default (API keys, webhook subscriptions: not rebuildable), but
  `synchronous=NORMAL` for the projections' own write transactions (`read_model=True`): in WAL
  mode a power cut can then lose the last commits, never half of one, and a read model plus its
  tracking rows are rebuilt from the log, so a lost commit is applied again. The raw archive and
  the embedded log are other files, and keep FULL.
- `cache_size` 8 MiB a connection (SQLite's default is 2 MiB): a batch inserts into a dozen
  B-trees (records, crosswalk, history, availability, event ids) at random keys; with the small
  cache most of those inserts re-read their pages from the file. Pages are taken as used; 8 MiB,
  not more, because every pooled connection of both `hub serve` processes may fill its own. The
  pool hands out the connection used last (LIFO): sequential work keeps to one warm connection,
  and the others, opened when calls overlapped, stay small.
- `wal_autocheckpoint` 32 MiB of WAL (default 4 MiB): one projection batch writes more than
  4 MiB, so the default copied the WAL back into the file (with its fsyncs) after every batch;
  now a page a few batches rewrite is copied back once. Durability is unchanged (the WAL is the
  commit); the WAL file stays up to that size.
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

    from sqlalchemy import URL, Connection

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 8 * 1024
SQLITE_CHECKPOINT_PAGES = 8192  # of 4 KiB: 32 MiB
PG_CONNECT_TIMEOUT_S = 5
_WRITE_OPTION = "hub_write"
_READ_MODEL_OPTION = "hub_read_model"
_SYNC_KEY = "hub_synchronous"  # in the DBAPI connection's info: the level last set on it


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A synchronous engine for read models; `url` like `sqlite:///path` or `postgresql+psycopg://...`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if _queue_pooled(parsed, kwargs):
            # Last in, first out: work that comes one call at a time reuses one connection (one
            # warm page cache) instead of cycling through every pooled one, each filling 8 MiB.
            kwargs.setdefault("pool_use_lifo", True)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql":
        # An unreachable server should fail a health check in seconds, not hang it.
        kwargs.setdefault("connect_args", {"connect_timeout": PG_CONNECT_TIMEOUT_S})
    return create_engine(url, **kwargs)


def _queue_pooled(url: URL, kwargs: dict[str, Any]) -> bool:
    """Whether SQLAlchemy pools this SQLite engine in a QueuePool (a file database, no pool given);
    in-memory databases get a single-connection pool, and a NullPool has no order to choose."""
    if "poolclass" in kwargs or "pool" in kwargs:
        return False
    return bool(url.database) and url.database != ":memory:" and url.query.get("mode") != "memory"


def write_transaction(engine: Engine, *, read_model: bool = False) -> AbstractContextManager[Connection]:
    """`engine.begin()` for a writer: on SQLite the transaction takes the write lock up front.

    `read_model`: the transaction writes only what the log can rebuild (projection tables,
    tracking, outbox), so on SQLite it commits with synchronous=NORMAL (see the module docstring).
    """
    options: dict[str, Any] = {_WRITE_OPTION: True}
    if read_model:
        options[_READ_MODEL_OPTION] = True
    return engine.execution_options(**options).begin()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite: it would otherwise run reads outside
        # any transaction and BEGIN only before the first write.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            # busy_timeout first: after a crash the first connection recovers the WAL under a
            # lock, and a second one opening meanwhile must wait, not fail "database is locked".
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        immediate = bool(options.get(_WRITE_OPTION))
        if immediate:
            # The level is per connection and cannot change inside a transaction: set it before
            # BEGIN, only when it differs from what this pooled connection last had.
            level = "NORMAL" if options.get(_READ_MODEL_OPTION) else "FULL"
            info = conn.connection.info
            if info.get(_SYNC_KEY, "FULL") != level:
                conn.exec_driver_sql(f"PRAGMA synchronous={level}")
                info[_SYNC_KEY] = level
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
