"""Batched reads by key: the rows of a table whose key column is in a list, at driver level on SQLite.

A projection loads the rows one batch touches with a few `key IN (...)` queries of hundreds of
values each. Through SQLAlchemy Core, building the statement, expanding the IN list and making
the result rows cost several times what SQLite spends on the query (the asset registry's reads
were ~9 % of its apply, against ~3 % in SQLite). So on SQLite the SQL is built once per
(table, columns, filters, list length) and run through the driver, and each column's values go
through that column's own result processor (TypeDecorators such as
projections.runtime.sqltypes convert exactly as in ordinary queries). PostgreSQL keeps the Core
statement: `in_values` binds the whole list as one array, and psycopg converts the values itself.

SQL is assembled from our own table and column names only (quoted); values are always bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from projections.runtime.upsert import chunks, in_values

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import Connection, Dialect, Table


def select_in(
    conn: Connection,
    table: Table,
    key: str,
    values: Sequence[Any],
    *,
    columns: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
    for_update: bool = False,
) -> list[dict[str, Any]]:
    """Rows of `table` (as dicts of `columns`, default all) whose `key` is one of `values` and whose
    columns equal `where`'s values; `for_update` locks them (PostgreSQL; SQLite's writers already
    hold the database's write lock). Order unspecified."""
    names = [c.name for c in table.columns] if columns is None else list(columns)
    filters = dict(where or {})
    if conn.dialect.name != "sqlite":
        out: list[dict[str, Any]] = []
        for chunk in chunks(conn, values):
            query = select(*(table.c[n] for n in names)).where(
                in_values(conn, table.c[key], chunk), *(table.c[n] == v for n, v in filters.items())
            )
            out.extend(
                dict(row) for row in conn.execute(query.with_for_update() if for_update else query).mappings()
            )
        return out
    processors = _result_processors(table, tuple(names), conn.dialect)
    binds = [_bind(table, n, v, conn.dialect) for n, v in filters.items()]
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(conn, values):
        sql = _sql(table, tuple(names), key, tuple(filters), size=len(chunk), dialect=conn.dialect)
        key_bind = _bind_processor(table, key, conn.dialect)
        params = list(chunk) if key_bind is None else [None if v is None else key_bind(v) for v in chunk]
        rows.extend(conn.exec_driver_sql(sql, (*binds, *params)).fetchall())
    if all(p is None for p in processors):
        return [dict(zip(names, row, strict=True)) for row in rows]
    out = []
    for row in rows:
        out.append(
            {
                name: value if (process is None or value is None) else process(value)
                for name, value, process in zip(names, row, processors, strict=True)
            }
        )
    return out


_SQL: dict[tuple[int, tuple[str, ...], str, tuple[str, ...], int], tuple[Table, str]] = {}


def _sql(
    table: Table, names: tuple[str, ...], key: str, filters: tuple[str, ...], *, size: int, dialect: Dialect
) -> str:
    """The SELECT for a list of `size` keys (once per shape: a batch repeats the same few)."""
    cache_key = (id(table), names, key, filters, size)
    found = _SQL.get(cache_key)
    if found is None or found[0] is not table:
        quote = dialect.identifier_preparer.quote
        conditions = [f"{quote(f)} = ?" for f in filters]
        conditions.append(f"{quote(key)} IN ({', '.join('?' * size)})")
        sql = (
            f"SELECT {', '.join(quote(n) for n in names)} FROM {quote(table.name)}"  # nosec B608: our names
            f" WHERE {' AND '.join(conditions)}"
        )
        found = _SQL[cache_key] = (table, sql)
    return found[1]


def _bind(table: Table, name: str, value: Any, dialect: Dialect) -> Any:
    process = _bind_processor(table, name, dialect)
    return value if process is None or value is None else process(value)


def _bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    column_type = table.c[name].type
    return column_type._cached_bind_processor(dialect)


def _result_processors(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> list[Callable[[Any], Any] | None]:
    # coltype None: SQLite reports no declared types to the driver; SQLAlchemy passes the same.
    return [table.c[n].type._cached_result_processor(dialect, None) for n in names]
