"""Swap rebuilt tables in for the live ones: one transaction on the live database, or nothing.

How, and why this way. Inside one write transaction on the live database:
1. lock out the live runner of this projection: its tracking rows `FOR UPDATE` (the same first
   step as projections.runtime.tracking.apply_once, so the two queue instead of deadlocking) and, on
   PostgreSQL, its tables in EXCLUSIVE mode (writers wait, readers do not); SQLite's
   `BEGIN IMMEDIATE` already excludes every other writer;
2. check that the live projection has not applied past the rebuild: if it has, give up this
   attempt (the caller catches up and tries again), because the live runner is about to
   continue from the rebuild's offsets and must not skip anything;
3. replace the live rows with the rebuilt ones (`DELETE`, then `INSERT ... SELECT` from the
   scratch, parents before children), and the projection's rows in the shared tracking tables
   likewise, so the live runner resumes exactly where the rebuild ended. A live table whose
   stored columns or index names differ from the projection's definition (its schema changed
   in a new release: read models have no migrations, a rebuild is the migration) is dropped and
   created anew from the definition instead, in the same transaction.

Readers never see a half-swapped state: on SQLite (WAL) and on PostgreSQL (MVCC) a reader sees
the old rows until the commit and the new ones after it, and is not blocked (except on
PostgreSQL while a table is recreated: DROP TABLE locks it, so readers wait for the commit). Copying rows,
rather than renaming tables (SQLite cannot move a table between attached files; PostgreSQL's
`ALTER TABLE ... SET SCHEMA` takes an ACCESS EXCLUSIVE lock that blocks readers, and would leave
types and sequences behind), costs time proportional to the read model inside the transaction,
during which only the projection's own runner waits.

Derived events (projection_outbox): afterwards the outbox holds exactly the rebuild's staged
events. One the live runner had already published keeps the live row (the bytes that went out,
marked published): it is never sent again. Any other stays unpublished and the live runner
publishes it once, e.g. one concluded from records the rebuild applied past the live position,
which the live runner will now skip, or one a fixed projection concludes that the old one did
not. (Marking everything published instead would lose those.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import MetaData, Table, delete, insert, inspect, or_, select, text

from projections.runtime.db import write_transaction
from projections.runtime.derived import OUTBOX_METADATA
from projections.runtime.tracking import TRACKING_METADATA, tracked_offsets

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection

    from hub.ports import TopicPartition
    from projections.runtime.base import Projection
    from replay.scratch import Scratch


def swap_in(
    scratch: Scratch, projection: Projection, positions: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int] | None:
    """Swap the scratch tables in if the live projection is not past `positions`.

    `positions`: the scratch's last applied offset per partition. Returns None once swapped, or
    the live positions that are ahead (nothing changed then).
    """
    engine = scratch.swap_engine()
    try:
        with write_transaction(engine) as conn:
            ahead = _lock_and_check(conn, projection, positions)
            if ahead:
                return ahead
            live_schema = "main" if conn.dialect.name == "sqlite" else _current_schema(conn)
            own_live = _copies(projection.metadata, live_schema)
            own_scratch = _copies(projection.metadata, scratch.schema)
            reshaped = {
                t.name for t in projection.metadata.sorted_tables if not _same_shape(conn, t, live_schema)
            }
            for table in reversed(projection.metadata.sorted_tables):
                target = own_live[table.name]
                if table.name in reshaped:
                    target.drop(conn)
                else:
                    conn.execute(delete(target))
            for table in projection.metadata.sorted_tables:
                if table.name in reshaped:
                    own_live[table.name].create(conn)
                _copy_table(conn, own_scratch[table.name], own_live[table.name])
            _swap_shared(conn, projection.name, live_schema, scratch.schema)
        return None
    finally:
        if engine is not scratch.live:
            engine.dispose()


def _lock_and_check(
    conn: Connection, projection: Projection, positions: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    live = tracked_offsets(conn, projection.name, for_update=True)
    if conn.dialect.name == "postgresql" and projection.metadata.tables:
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(t.name) for t in projection.metadata.sorted_tables)
        conn.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    return {tp: offset for tp, offset in live.items() if offset > positions.get(tp, -1)}


def _swap_shared(conn: Connection, name: str, live_schema: str, scratch_schema: str) -> None:
    shared_live = _shared_copies(live_schema)
    shared_scratch = _shared_copies(scratch_schema)
    for table_name in ("projection_tracking", "projection_applied_events", "projection_poison"):
        live_table, scratch_table = shared_live[table_name], shared_scratch[table_name]
        conn.execute(delete(live_table).where(live_table.c.projection == name))
        _copy_rows(conn, scratch_table, live_table, where_projection=name)
    _swap_outbox(conn, name, shared_live["projection_outbox"], shared_scratch["projection_outbox"])


def _swap_outbox(conn: Connection, name: str, live: Table, scratch: Table) -> None:
    """Afterwards the outbox holds exactly the rebuild's derived events; for those the live runner
    had already published, the row it published (value, staging time) is kept, marked published;
    the others are the rebuild's rows, unpublished, for the live runner to publish once."""
    rebuilt_ids = select(scratch.c.event_id).where(scratch.c.projection == name)
    conn.execute(
        delete(live).where(
            live.c.projection == name, or_(live.c.published.is_(False), live.c.event_id.not_in(rebuilt_ids))
        )
    )
    kept_ids = select(live.c.event_id).where(live.c.projection == name)
    conn.execute(delete(scratch).where(scratch.c.projection == name, scratch.c.event_id.in_(kept_ids)))
    _copy_rows(conn, scratch, live, where_projection=name)


def _copy_table(conn: Connection, source: Table, target: Table) -> None:
    """All rows of `source` into the emptied `target`.

    SQLite copies `INSERT INTO t SELECT * FROM s` record by record without decoding them (its
    transfer optimisation) when both tables have the same columns in the same order, the same
    indexes, and the target is empty: several times faster than a column-by-column copy, which
    stays the way for a live table whose columns are in another order.
    """
    if conn.dialect.name == "sqlite" and _column_order(conn, target) == [c.name for c in source.columns]:
        quote = conn.dialect.identifier_preparer.quote
        into = f"{quote(str(target.schema))}.{quote(target.name)}"
        source_name = f"{quote(str(source.schema))}.{quote(source.name)}"
        # Bandit B608: our own quoted schema and table names; no values.
        conn.exec_driver_sql(f"INSERT INTO {into} SELECT * FROM {source_name}")  # nosec B608
        return
    _copy_rows(conn, source, target)


def _column_order(conn: Connection, table: Table) -> list[str]:
    return [c["name"] for c in inspect(conn).get_columns(table.name, schema=table.schema)]


def _copy_rows(
    conn: Connection, source: Table, target: Table, *, where_projection: str | None = None
) -> None:
    names = [c.name for c in target.columns]
    query = select(*(source.c[n] for n in names))
    if where_projection is not None:
        query = query.where(source.c.projection == where_projection)
    conn.execute(insert(target).from_select(names, query))


def _copies(metadata: MetaData, schema: str) -> dict[str, Table]:
    """The tables of `metadata`, named in `schema` (an attached SQLite file or a PostgreSQL schema)."""
    copy = MetaData()
    return {t.name: t.to_metadata(copy, schema=schema) for t in metadata.sorted_tables}


def _same_shape(conn: Connection, table: Table, schema: str) -> bool:
    """Whether the stored table has exactly the defined columns and index names."""
    inspector = inspect(conn)
    columns = {c["name"] for c in inspector.get_columns(table.name, schema=schema)}
    indexes = {i["name"] for i in inspector.get_indexes(table.name, schema=schema)}
    return columns == {c.name for c in table.columns} and indexes == {i.name for i in table.indexes}


def _shared_copies(schema: str) -> dict[str, Table]:
    return {**_copies(TRACKING_METADATA, schema), **_copies(OUTBOX_METADATA, schema)}


def _current_schema(conn: Connection) -> str:
    return str(conn.execute(text("SELECT current_schema()")).scalar_one())
