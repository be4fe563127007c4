"""make_engine: the durability and concurrency settings read models rely on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from projections.runtime.db import make_engine, write_transaction


class TestSqliteEngine:
    def test_wal_full_sync_and_busy_timeout(self, tmp_path: Path) -> None:
        """Every SQLite connection runs in WAL with synchronous=FULL and waits for the write lock."""
        engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}")
        with engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        engine.dispose()
        assert (mode, sync, busy) == ("wal", 2, 30_000)

    def test_a_reader_sees_a_consistent_snapshot_while_a_writer_commits(self, tmp_path: Path) -> None:
        """Reads run inside a real transaction: a commit elsewhere is invisible until the reader ends."""
        engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}")
        with write_transaction(engine) as conn:
            conn.execute(text("CREATE TABLE t (v INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1
            with write_transaction(engine) as writer:
                writer.execute(text("INSERT INTO t VALUES (2)"))
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1
        with engine.connect() as fresh:
            assert fresh.execute(text("SELECT count(*) FROM t")).scalar() == 2
        engine.dispose()

    def test_the_pool_hands_out_the_connection_used_last(self, tmp_path: Path) -> None:
        """Sequential work reuses the last returned connection (one warm page cache), not the oldest."""
        engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}")
        with engine.connect() as first, engine.connect() as second:  # two pooled connections
            older, newer = first.connection.dbapi_connection, second.connection.dbapi_connection
        # `second` closes first, then `first`: `first` went back to the pool last.
        with engine.connect() as again:
            assert again.connection.dbapi_connection is older
        assert newer is not older
        engine.dispose()

    def test_engines_of_other_pools_still_open(self, tmp_path: Path) -> None:
        """An in-memory database and a NullPool engine (rebuild's swap) are made as before."""
        for engine in (
            make_engine("sqlite://"),
            make_engine(f"sqlite:///{tmp_path / 'rm.db'}", poolclass=NullPool),
        ):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            engine.dispose()


class TestPostgresEngine:
    def test_pings_pooled_connections(self, db_url: str) -> None:
        """PostgreSQL engines check a pooled connection before use (a restarted server is not an error)."""
        engine = make_engine(db_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert engine.pool._pre_ping is (engine.dialect.name == "postgresql")
        engine.dispose()
