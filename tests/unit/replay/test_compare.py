"""compare: canonical order, exact values, ignored processing-time columns, the first difference."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, insert

from projections.runtime.db import make_engine, write_transaction
from projections.runtime.derived import projection_outbox
from projections.runtime.sqltypes import ExactDecimal
from projections.runtime.tracking import ensure_tables
from replay.compare import ROW_MISSING, compare
from schemas.catalogue import Event

AT = datetime(2024, 1, 1, tzinfo=UTC)


class Ledger:
    """A one-table projection to compare: text keys and exact amounts."""

    name = "ledger"
    topics = ("canonical.asset.v1",)
    metadata = MetaData()
    rows = Table(
        "ledger_rows", metadata, Column("k", String(20), primary_key=True), Column("amount", ExactDecimal)
    )

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        return None


@pytest.fixture
def pair(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two databases of the same kind with the Ledger's tables: a live and a rebuilt one."""
    yield from _pair(db_url)


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """The same on SQLite only, for what does not depend on the database."""
    yield from _pair(f"sqlite:///{tmp_path / 'readmodels.db'}")


def _pair(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    live = make_engine(db_url)
    if live.dialect.name == "sqlite":
        rebuilt = make_engine(db_url.replace("readmodels.db", "rebuilt.db"))
    else:
        with write_transaction(live) as conn:
            conn.exec_driver_sql("CREATE SCHEMA other")
        rebuilt = make_engine(db_url, connect_args={"options": "-c search_path=other"})
    for engine in (live, rebuilt):
        ensure_tables(engine, Ledger())
    yield live, rebuilt
    live.dispose()
    rebuilt.dispose()


def put(engine: Engine, rows: dict[str, str]) -> None:
    with write_transaction(engine) as conn:
        conn.execute(insert(Ledger.rows), [{"k": k, "amount": Decimal(v)} for k, v in rows.items()])


def run(pair: tuple[Engine, Engine]):  # type: ignore[no-untyped-def]
    live, rebuilt = pair
    with live.connect() as a, rebuilt.connect() as b:
        return compare(a, b, Ledger())


KEYS = {"b": "1.00", "B": "2.00", "张": "3.00", "a": "4.00", "Z": "5.00", "ä": "6.00"}


class TestCompare:
    def test_same_rows_inserted_in_another_order_are_equal(self, pair: tuple[Engine, Engine]) -> None:
        """Insertion order does not matter; case and non-ASCII keys merge in the same canonical order."""
        put(pair[0], KEYS)
        put(pair[1], dict(reversed(KEYS.items())))
        result = run(pair)
        assert result.equal
        assert [t.live_rows for t in result.tables if t.table == "ledger_rows"] == [len(KEYS)]

    def test_a_changed_scale_is_a_difference(self, pair: tuple[Engine, Engine]) -> None:
        """1.0 and 1.00 are equal numbers but different stored values: reported with both."""
        put(pair[0], {**KEYS, "b": "1.0"})
        put(pair[1], KEYS)
        difference = run(pair).difference
        assert difference is not None
        assert (difference.table, difference.key, difference.column) == ("ledger_rows", {"k": "b"}, "amount")
        assert str(difference.live) == "1.0"
        assert str(difference.rebuilt) == "1.00"

    def test_an_extra_row_is_reported_by_its_key(self, sqlite_pair: tuple[Engine, Engine]) -> None:
        """A row only the rebuilt side has is the first difference, whatever its place in the order."""
        pair = sqlite_pair
        put(pair[0], KEYS)
        put(pair[1], {**KEYS, "Bb": "9"})
        difference = run(pair).difference
        assert difference is not None
        assert (difference.key, difference.column, difference.live) == ({"k": "Bb"}, ROW_MISSING, None)

    def test_processing_time_columns_are_ignored_and_nothing_else(
        self, sqlite_pair: tuple[Engine, Engine]
    ) -> None:
        """Outbox rows differing only in created_at and published are equal; a different value is not."""
        pair = sqlite_pair
        row = {
            "projection": "ledger",
            "event_id": "e1",
            "topic": "t",
            "event_type": "x",
            "key": "k",
            "value": b"v",
        }
        with write_transaction(pair[0]) as conn:
            conn.execute(insert(projection_outbox), [{**row, "created_at": AT, "published": True}])
        with write_transaction(pair[1]) as conn:
            conn.execute(
                insert(projection_outbox), [{**row, "created_at": datetime.now(UTC), "published": False}]
            )
        assert run(pair).equal
        with write_transaction(pair[1]) as conn:
            conn.execute(projection_outbox.update().values(value=b"other"))
        difference = run(pair).difference
        assert difference is not None
        assert (difference.table, difference.column) == ("projection_outbox", "value")

    def test_other_projections_tracking_rows_are_not_compared(
        self, sqlite_pair: tuple[Engine, Engine]
    ) -> None:
        """Rows of the shared tracking tables that belong to another projection are left out."""
        pair = sqlite_pair
        row = {"event_id": "e1", "topic": "t", "event_type": "x", "key": "k", "value": b"v", "created_at": AT}
        with write_transaction(pair[0]) as conn:
            conn.execute(
                insert(projection_outbox), [{**row, "projection": "someone_else", "published": True}]
            )
        assert run(pair).equal
