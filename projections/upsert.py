"""Batched upserts for SQLite and PostgreSQL: one INSERT ... ON CONFLICT statement per batch.

Both dialects spell it the same way in SQLAlchemy (`on_conflict_do_update` on their own
`insert`); SQLAlchemy sends many rows per round trip (insertmanyvalues), which is where the
projection throughput comes from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Connection, Table


def _insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"read models support sqlite and postgresql, not {name}")


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
    if not rows:
        return
    stmt = _insert(conn, table)
    columns = [c for c in rows[0] if c not in key]
    if update and columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={c: stmt.excluded[c] for c in columns}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    conn.execute(stmt, list(rows))
