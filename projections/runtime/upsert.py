"""Batched writes for SQLite and PostgreSQL: one statement per table per batch, at driver level.

Projection throughput is decided here. SQLAlchemy's executemany builds and processes a parameter
dict per row, which costs more than the database work itself; so rows are turned into driver
parameters once, with each column's own bind processor (TypeDecorators such as
projections.runtime.sqltypes behave exactly as in ordinary statements), and sent with one call:

- SQLite: `INSERT ... ON CONFLICT (key) DO UPDATE SET c = excluded.c` through sqlite3's
  executemany (in-process, no round trips).
- PostgreSQL: executemany would still be one statement per row on the server. Instead the rows
  travel as one array per column: `INSERT ... SELECT * FROM unnest(...) ON CONFLICT ...`, one
  statement per batch. NUMERIC arrays go as text, so a value keeps its scale (`185000.00` stays
  `185000.00`; psycopg's binary numeric arrays would normalise it).

SQL is assembled from our own table and column names only (quoted); values are always bound.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic_core import TzInfo
from sqlalchemy import any_, bindparam
from sqlalchemy.dialects import postgresql

from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from sqlalchemy import ColumnElement, Connection, CursorResult, Dialect, Table
    from sqlalchemy.sql.elements import ColumnClause

IN_CHUNK = 500  # bound parameters per IN list on SQLite, well under its limit
_DIALECTS = frozenset({"sqlite", "postgresql"})


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: bool = True,
) -> None:
    """Insert `rows`; on a `key` conflict overwrite every non-key column (or keep the row if not `update`).

    Every row must carry the same columns. Rows must not repeat a key within one call
    (PostgreSQL refuses to touch one row twice in a statement): fold first, then upsert.
    """
    if rows:
        _insert(conn, table, rows, key=key, update=update)


def upsert_columns(
    conn: Connection,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    key: Sequence[str],
    update: bool = True,
) -> None:
    """`upsert`, with the rows given column by column (name -> values, all of one length): a
    projection writing many rows of a few known columns need not build a dict per row."""
    names = list(columns)
    if names and columns[names[0]]:
        values = [_converted(conn, table, name, columns[name]) for name in names]
        _insert_values(conn, table, names, values, key=key, update=update)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """A plain INSERT of `rows` (same columns each), as one driver call: a key already stored
    raises, as with Core's `insert`. Python-side column defaults are not applied: give every value."""
    if rows:
        _insert(conn, table, rows, key=(), update=False)


def insert_new(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    returning: str | Sequence[str],
) -> list[Any]:
    """PostgreSQL: insert the rows whose `key` is not stored yet; return their `returning` values
    (a tuple of values each when `returning` names several columns).

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING` statement, so no lookup plan is involved
    (a generic plan over an IN list once scanned a whole table here). On SQLite, look existing
    keys up with `in_values` (its planner always uses the primary key) and `upsert` the rest.
    """
    if conn.dialect.name != "postgresql":
        raise NotImplementedError("insert_new is the PostgreSQL path; see the docstring")
    if not rows:
        return []
    if isinstance(returning, str):
        return list(_insert(conn, table, rows, key=key, update=False, returning=(returning,)).scalars())
    return [tuple(row) for row in _insert(conn, table, rows, key=key, update=False, returning=returning)]


def in_values(conn: Connection, column: ColumnClause[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`: as `= ANY(array)` on PostgreSQL (one parameter, one plan), IN elsewhere.

    Split long lists with `chunks`.
    """
    if conn.dialect.name == "postgresql":
        array = postgresql.ARRAY(column.type)
        return column == any_(bindparam(None, list(values), type_=array, unique=True))
    # A ready expanding parameter: SQLAlchemy would otherwise coerce every value into its own literal.
    return column.in_(bindparam(None, list(values), expanding=True, unique=True))


def chunks(conn: Connection, values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """`values` in slices fit for `in_values`: all at once on PostgreSQL, IN_CHUNK at a time elsewhere."""
    size = len(values) if conn.dialect.name == "postgresql" else IN_CHUNK
    for start in range(0, len(values), max(size, 1)):
        yield values[start : start + size]


def _insert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: bool,
    returning: Sequence[str] = (),
) -> CursorResult[Any]:
    columns = list(rows[0])
    values = [_column_values(conn, table, name, rows) for name in columns]
    return _insert_values(conn, table, columns, values, key=key, update=update, returning=returning)


def _insert_values(
    conn: Connection,
    table: Table,
    columns: list[str],
    values: list[list[Any]],
    *,
    key: Sequence[str],
    update: bool,
    returning: Sequence[str] = (),
) -> CursorResult[Any]:
    """The statement for `columns`, with `values` (driver-level, one list per column)."""
    dialect = conn.dialect
    if dialect.name not in _DIALECTS:
        raise NotImplementedError(f"read models support sqlite and postgresql, not {dialect.name}")
    quote = dialect.identifier_preparer.quote
    updated = [c for c in columns if c not in key] if update else []
    conflict = f" ON CONFLICT ({', '.join(quote(k) for k in key)}) " if key else ""
    if updated:
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updated)
        # Bandit B608: the SQL is built from our own quoted table/column names; values are bound.
        conflict += f"DO UPDATE SET {sets}"  # nosec B608
    elif key:
        conflict += "DO NOTHING"
    if returning:
        conflict += f" RETURNING {', '.join(quote(c) for c in returning)}"
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "

    if dialect.name == "sqlite":
        placeholders = ", ".join("?" for _ in columns)
        return conn.exec_driver_sql(
            f"{head}VALUES ({placeholders}){conflict}", list(zip(*values, strict=True))
        )

    casts = []
    for name, column_values in zip(columns, values, strict=True):
        sql_type = _sql_type(table, name, dialect)
        if sql_type.startswith("NUMERIC"):
            casts.append(f"%b::text[]::{sql_type}[]")
            column_values[:] = [None if v is None else str(v) for v in column_values]
        else:
            casts.append(f"%b::{sql_type}[]")
    sql = f"{head}SELECT * FROM unnest({', '.join(casts)}){conflict}"  # nosec B608
    return conn.exec_driver_sql(sql, tuple(values))


_MISSING = object()


def _column_values(conn: Connection, table: Table, name: str, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The driver-level values of one column, as SQLAlchemy itself would bind them."""
    return _converted(conn, table, name, [row[name] for row in rows], owned=True)


def _converted(
    conn: Connection, table: Table, name: str, raw: Sequence[Any], *, owned: bool = False
) -> list[Any]:
    """`raw` values of one column, driver-level, in a list of their own (the PostgreSQL path
    edits it) unless `owned` (`raw` is a list the caller gives up)."""
    process = _bind_processor(table, name, conn.dialect)
    if process is None:
        return raw if owned and isinstance(raw, list) else list(raw)
    if isinstance(table.c[name].type, UtcDateTime):
        # Convert each time once (a batch of meter readings repeats the same few times across its
        # series). Keyed with `fold`: two times of one zone that differ only by fold (the repeated
        # hour when clocks go back) compare equal but are two instants.
        done: dict[Any, Any] = {}
        out: list[Any] = []
        for v in raw:
            if v is None:
                out.append(None)
                continue
            key = (v, v.fold)
            found = done.get(key, _MISSING)
            if found is _MISSING:
                found = done[key] = process(v)
            out.append(found)
        return out
    # Processors map None to None; most optional columns are None in most rows, so skip the call.
    return [None if value is None else process(value) for value in raw]


# Per dialect, per (table id, column); the table is kept with its entry so an id is never reused.
# A few entries per table and engine: a process makes a handful of engines.
_PROCESSORS: dict[Dialect, dict[tuple[int, str], tuple[Table, Callable[[Any], Any] | None]]] = {}


def _bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column's bind processor for `dialect` (once per column: building one is not free), or a
    faster equivalent (`_FAST`) where one gives the same driver value."""
    cache = _PROCESSORS.setdefault(dialect, {})
    found = cache.get((id(table), name))
    if found is None or found[0] is not table:
        column_type = table.c[name].type
        # dialect_impl: the processor SQLAlchemy uses for this dialect (the bare type's would
        # differ, e.g. turn decimals into floats).
        process: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(dialect)
        fast = _FAST.get((type(column_type).__name__, dialect.name))
        if process is not None and fast is not None:
            process = _checked(fast[0], process, fast[1])
        found = cache[(id(table), name)] = (table, process)
    return found[1]


_SQL_TYPES: dict[Dialect, dict[tuple[int, str], tuple[Table, str]]] = {}


def _sql_type(table: Table, name: str, dialect: Dialect) -> str:
    """The column's type as `dialect` spells it (once per column: compiling is not free)."""
    cache = _SQL_TYPES.setdefault(dialect, {})
    found = cache.get((id(table), name))
    if found is None or found[0] is not table:
        found = cache[(id(table), name)] = (table, table.c[name].type.compile(dialect=dialect))
    return found[1]


def _checked(
    fast: Callable[[Any], Any], generic: Callable[[Any], Any], probes: Sequence[Any]
) -> Callable[[Any], Any]:
    """`fast` where it gives what `generic` gives on every probe (e.g. same storage format), else
    `generic`; `fast` hands a value it does not handle (another type) to `generic`."""
    if any(fast(p) != generic(p) for p in probes):
        return generic

    def process(value: Any) -> Any:
        result = fast(value)
        return generic(value) if result is _UNHANDLED else result

    return process


_UNHANDLED = object()
_UTC_PROBES = (
    datetime(2024, 1, 31, 23, 5, 9, 123, tzinfo=UTC),
    datetime(1999, 12, 31, 16, 0, tzinfo=timezone(timedelta(hours=8))),
    datetime(987, 6, 5, 4, 3, 2, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
)


_FIXED_OFFSETS = frozenset({timezone, TzInfo})
_UTC_TEXT: dict[datetime, str] = {}  # a batch binds the same instants many times (clocks, history)
_UTC_TEXT_MAX = 1 << 16


def _sqlite_utc(value: Any) -> Any:
    if value.__class__ is not datetime or value.tzinfo is None:
        return _UNHANDLED  # the generic processor refuses naive values, and knows other types
    # sqlite's DATETIME format is isoformat's with a space and microseconds (the probes check).
    if value.tzinfo.__class__ not in _FIXED_OFFSETS:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    # With fixed offsets, equal datetimes are one instant (a zone's DST fold could break that),
    # and the text is that instant's UTC wall time.
    text = _UTC_TEXT.get(value)
    if text is None:
        if len(_UTC_TEXT) >= _UTC_TEXT_MAX:
            _UTC_TEXT.clear()
        text = _UTC_TEXT[value] = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return text


def _pg_utc(value: Any) -> Any:
    if value.__class__ is not datetime or value.tzinfo is None:
        return _UNHANDLED
    return value.astimezone(UTC)


def _sqlite_date(value: Any) -> Any:
    return value.isoformat() if value.__class__ is date else _UNHANDLED


def _sqlite_bool(value: Any) -> Any:
    return int(value) if value.__class__ is bool else _UNHANDLED


def _sqlite_decimal(value: Any) -> Any:
    return str(value) if value.__class__ is Decimal else _UNHANDLED


_FAST: dict[tuple[str, str], tuple[Callable[[Any], Any], Sequence[Any]]] = {
    ("UtcDateTime", "sqlite"): (_sqlite_utc, _UTC_PROBES),
    ("UtcDateTime", "postgresql"): (_pg_utc, _UTC_PROBES),
    ("Date", "sqlite"): (_sqlite_date, (date(2024, 2, 29), date(987, 1, 2))),
    ("Boolean", "sqlite"): (_sqlite_bool, (True, False)),
    ("ExactDecimal", "sqlite"): (_sqlite_decimal, (Decimal("185000.00"), Decimal("-1E+3"), Decimal("0.1"))),
}
