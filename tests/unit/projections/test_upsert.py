"""Batched driver-level writes: values read back exactly as written, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Boolean, Column, Date, Engine, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError

from projections.runtime.db import make_engine, write_transaction
from projections.runtime.fetch import select_in
from projections.runtime.sqltypes import ExactDecimal, UtcDateTime
from projections.runtime.upsert import chunks, in_values, insert_new, insert_rows, upsert

MD = MetaData()
THINGS = Table(
    "test_things",
    MD,
    Column("id", String(20), primary_key=True),
    Column("label", Text),
    Column("amount", ExactDecimal),
    Column("at", UtcDateTime),
    Column("on", Date),
    Column("flag", Boolean),
)
ROW = {
    "id": "a",
    "label": "重症医学科 'quoted' {braces} \\ back,slash \"dq\"",
    "amount": Decimal("185000.00"),
    "at": datetime(2024, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))),
    "on": date(2024, 3, 1),
    "flag": True,
}


@pytest.fixture
def things(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    MD.create_all(engine)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(THINGS).order_by(THINGS.c.id)).mappings()]


class TestUpsert:
    def test_values_read_back_exactly(self, things: Engine) -> None:
        """Text with quotes and Chinese, decimal scale, aware datetimes (as UTC), dates and booleans survive."""
        empty = {"id": "b", "label": None, "amount": None, "at": None, "on": None, "flag": False}
        with write_transaction(things) as conn:
            upsert(conn, THINGS, [ROW, empty], key=("id",))
        got = _rows(things)
        assert got[0] == {**ROW, "at": datetime(2024, 3, 1, 8, 0, tzinfo=UTC)}
        assert str(got[0]["amount"]) == "185000.00"
        assert got[1] == empty

    def test_a_conflict_overwrites_non_key_columns(self, things: Engine) -> None:
        """update=True replaces the stored row's other columns."""
        with write_transaction(things) as conn:
            upsert(conn, THINGS, [ROW], key=("id",))
            upsert(conn, THINGS, [{**ROW, "label": "新", "amount": Decimal("0.10")}], key=("id",))
        assert (_rows(things)[0]["label"], _rows(things)[0]["amount"]) == ("新", Decimal("0.10"))

    def test_update_false_keeps_the_stored_row(self, things: Engine) -> None:
        """update=False inserts new keys and leaves existing ones alone."""
        with write_transaction(things) as conn:
            upsert(conn, THINGS, [ROW], key=("id",))
            upsert(conn, THINGS, [{**ROW, "label": "新"}, {**ROW, "id": "c"}], key=("id",), update=False)
        assert [(r["id"], r["label"]) for r in _rows(things)] == [("a", ROW["label"]), ("c", ROW["label"])]

    def test_naive_datetimes_are_refused(self, things: Engine) -> None:
        """A naive datetime is a time zone bug upstream: it is not silently stored."""
        with pytest.raises(ValueError, match="naive datetime"), write_transaction(things) as conn:
            upsert(conn, THINGS, [{**ROW, "at": datetime(2024, 3, 1, 8, 0)}], key=("id",))  # noqa: DTZ001


class TestInsertNewAndLookups:
    def test_insert_new_returns_only_new_keys_on_postgresql(self, things: Engine) -> None:
        """PostgreSQL: insert_new reports which keys it inserted; other databases refuse it by name."""
        with write_transaction(things) as conn:
            upsert(conn, THINGS, [ROW], key=("id",))
            rows = [{"id": i, "label": "x"} for i in ("a", "b", "c")]
            if conn.dialect.name != "postgresql":
                with pytest.raises(NotImplementedError):
                    insert_new(conn, THINGS, rows, key=("id",), returning="id")
                return
            assert sorted(insert_new(conn, THINGS, rows, key=("id",), returning="id")) == ["b", "c"]
        assert _rows(things)[0]["label"] == ROW["label"]

    def test_in_values_over_chunks_finds_every_match(self, things: Engine) -> None:
        """in_values + chunks select exactly the listed keys, however long the list."""
        ids = [f"k{i:04d}" for i in range(1200)]
        with write_transaction(things) as conn:
            upsert(conn, THINGS, [{"id": i, "label": None} for i in ids[::3]], key=("id",))
            found: set[str] = set()
            for chunk in chunks(conn, ids):
                found.update(
                    conn.execute(select(THINGS.c.id).where(in_values(conn, THINGS.c.id, chunk))).scalars()
                )
        assert found == set(ids[::3])

    def test_insert_rows_stores_rows_and_refuses_a_stored_key(self, things: Engine) -> None:
        """insert_rows is a plain INSERT: values read back exactly, and a taken key raises (no no-op)."""
        with write_transaction(things) as conn:
            insert_rows(conn, THINGS, [ROW, {**ROW, "id": "b", "label": None}])
        assert [r["id"] for r in _rows(things)] == ["a", "b"]
        assert _rows(things)[0] == {**ROW, "at": ROW["at"].astimezone(UTC)}
        with pytest.raises(IntegrityError), write_transaction(things) as conn:
            insert_rows(conn, THINGS, [{**ROW, "label": "again"}])
        assert _rows(things)[0]["label"] == ROW["label"]

    def test_select_in_reads_what_a_core_select_reads(self, things: Engine) -> None:
        """select_in (driver level on SQLite) gives the same values, types included, as a Core select,
        for the listed keys only (over several chunks), with its filters and column subsets."""
        ids = [f"k{i:04d}" for i in range(1200)]
        rows = [
            {**ROW, "id": i, "label": i[-1], "amount": Decimal(f"{n}.10") if n % 2 else None}
            for n, i in enumerate(ids[::3])
        ]
        with write_transaction(things) as conn:
            upsert(conn, THINGS, rows, key=("id",))
            found = select_in(conn, THINGS, "id", ids)
            some = select_in(conn, THINGS, "id", ids, columns=("id", "flag"), where={"label": "3"})
            none = select_in(conn, THINGS, "id", [])
        expected = {r["id"]: r for r in _rows(things)}
        assert {r["id"]: r for r in found} == expected
        assert [(r["id"], type(r["at"]), type(r["on"]), type(r["flag"])) for r in found[:1]] == [
            (found[0]["id"], datetime, date, bool)
        ]
        assert sorted(r["id"] for r in some) == sorted(i for i in expected if i.endswith("3"))
        assert all(set(r) == {"id", "flag"} and r["flag"] is True for r in some)
        assert none == []


class TestStoredText:
    """`upsert` binds with faster equivalents of some column types' processors (SQLite): the stored
    values must be exactly what SQLAlchemy's own insert stores."""

    VALUES = [  # noqa: RUF012
        {"at": datetime(2024, 1, 31, 23, 5, 9, 123, tzinfo=UTC), "on": date(2024, 2, 29)},
        {"at": datetime(2024, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))), "on": date(987, 1, 2)},
        # The same instant as the first, from another offset: one cached text must serve both.
        {"at": datetime(2024, 2, 1, 7, 5, 9, 123, tzinfo=timezone(timedelta(hours=8))), "on": None},
        {"at": datetime(987, 6, 5, 4, 3, 2, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))},
        # A zone with a DST fold: 01:30 happens twice on this day, an hour apart.
        {"at": datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"))},
        {"at": datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))},
        {"amount": Decimal("185000.00"), "flag": True},
        {"amount": Decimal("-1E+3"), "flag": False},
    ]

    def test_upsert_stores_what_a_plain_insert_stores(self, things: Engine) -> None:
        full = [dict.fromkeys(("label", "amount", "at", "on", "flag")) | v for v in self.VALUES]
        with write_transaction(things) as conn:
            upsert(conn, THINGS, [{"id": f"u{i}", **v} for i, v in enumerate(full)], key=("id",))
            conn.execute(insert(THINGS), [{"id": f"p{i}", **v} for i, v in enumerate(full)])
        columns = ", ".join(f'CAST("{c}" AS TEXT)' for c in ("amount", "at", "on", "flag"))
        with things.connect() as conn:
            stored = {r[0]: r[1:] for r in conn.exec_driver_sql(f"SELECT id, {columns} FROM test_things")}
        assert [stored[f"u{i}"] for i in range(len(full))] == [stored[f"p{i}"] for i in range(len(full))]
        # ... and the fold's two 01:30 are two instants, an hour apart.
        assert stored["u4"][1] != stored["u5"][1]
