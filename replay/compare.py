"""Compare a projection's live tables with rebuilt ones: a digest per table and the first difference.

What is compared: every table of the projection's metadata, and the projection's rows in the
shared tracking tables (offsets, applied event ids, poison records, staged derived events).

Canonical form. Rows are read in primary-key order (all columns for a table without one; NULLs
first; text in code-point order, i.e. `COLLATE "C"` on PostgreSQL, SQLite's default BINARY
collation), with the values as the database driver returns them (no result processing), and
each row is encoded with type tags (`N` null, `B` bool, `I` int, `D` decimal, `S` text, `X` bytes,
`T` date/time, `F` float). A table's digest is SHA-256 over its encoded rows in that order. Both
sides are the same database, so equal content gives equal bytes.

Ignored, and only these: values that record when the hub processed something rather than what
the log says (`IGNORED_COLUMNS`, and one field inside the outbox value):
- projection_outbox.created_at: when a derived event was staged;
- projection_outbox.published: whether the runner has published it yet (a rebuild never does);
- projection_poison.recorded_at: when a poison record was met;
- inside projection_outbox.value (the derived event's JSON), its `recorded_at`: when the hub
  concluded it, which for a time-driven conclusion (SLA breached, calibration overdue) is the
  clock time of the tick that found it. The rest of the event, id included, is compared.

The first difference is reported as (table, primary key, column, live value, rebuilt value); a
row present on one side only is reported with column `(row)` and `None` for the missing side. A
table whose stored columns differ (the projection's schema changed since the live table was
created: a rebuild and swap recreates it) is reported first, with an empty key, the column, and
`(no such column)` on the side that lacks it; its rows are then compared on the shared columns.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, inspect, select, type_coerce
from sqlalchemy.sql.sqltypes import NullType

from projections.runtime.derived import projection_outbox
from projections.runtime.tracking import projection_applied_events, projection_poison, projection_tracking

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy import ColumnElement, Connection

    from projections.runtime.base import Projection

TRACKING_TABLES: tuple[Table, ...] = (
    projection_applied_events,
    projection_outbox,
    projection_poison,
    projection_tracking,
)
IGNORED_COLUMNS: dict[str, frozenset[str]] = {
    "projection_outbox": frozenset({"created_at", "published"}),
    "projection_poison": frozenset({"recorded_at"}),
}
_CONCLUDED_AT = "recorded_at"
ROW_MISSING = "(row)"
NO_COLUMN = "(no such column)"
_STREAM_CHUNK = 5_000
_TEXT_TYPES = ("VARCHAR", "TEXT", "CHAR", "CHARACTER")


@dataclass(frozen=True, slots=True)
class Difference:
    """The first place live and rebuilt disagree."""

    table: str
    key: dict[str, Any]
    column: str
    live: Any
    rebuilt: Any

    def describe(self) -> str:
        key = ", ".join(f"{k}={v!r}" for k, v in self.key.items())
        if not self.key:
            return f"{self.table}: column {self.column} live={self.live} rebuilt={self.rebuilt}"
        if self.column == ROW_MISSING:
            side = "rebuilt" if self.rebuilt is None else "live"
            return f"{self.table} [{key}]: row missing from the {side} tables"
        return f"{self.table} [{key}] column {self.column}: live={self.live!r} rebuilt={self.rebuilt!r}"


@dataclass(frozen=True, slots=True)
class TableDigest:
    table: str
    live: str
    rebuilt: str
    live_rows: int
    rebuilt_rows: int

    @property
    def equal(self) -> bool:
        return self.live == self.rebuilt


@dataclass(frozen=True, slots=True)
class Comparison:
    """Per-table digests of both sides and the first difference (None when equal)."""

    tables: list[TableDigest] = field(default_factory=list)
    difference: Difference | None = None

    @property
    def equal(self) -> bool:
        return self.difference is None and all(t.equal for t in self.tables)


def compared_tables(projection: Projection) -> list[Table]:
    """The projection's own tables and the shared tracking tables, by name."""
    return sorted([*projection.metadata.tables.values(), *TRACKING_TABLES], key=lambda t: t.name)


def compare(live: Connection, rebuilt: Connection, projection: Projection) -> Comparison:
    """Compare the projection's tables on two connections (same dialect), table by table."""
    if live.dialect.name != rebuilt.dialect.name:
        raise ValueError("live and rebuilt tables must be on the same kind of database")
    digests: list[TableDigest] = []
    first: Difference | None = None
    for table in compared_tables(projection):
        digest, difference = _compare_table(live, rebuilt, table, projection.name)
        digests.append(digest)
        first = first or difference
    return Comparison(digests, first)


def _compare_table(
    live: Connection, rebuilt: Connection, table: Table, projection_name: str
) -> tuple[TableDigest, Difference | None]:
    ignored = IGNORED_COLUMNS.get(table.name, frozenset())
    first, shared = _schema_difference(live, rebuilt, table)
    columns = [c.name for c in table.columns if c.name not in ignored and c.name in shared]
    keys = [c.name for c in table.primary_key.columns if c.name in shared] or columns
    key_index = [columns.index(k) for k in keys]
    hashes = {"live": hashlib.sha256(), "rebuilt": hashlib.sha256()}
    counts = {"live": 0, "rebuilt": 0}

    def take(side: str, row: tuple[Any, ...]) -> None:
        hashes[side].update(_encode(row))
        counts[side] += 1

    def key_of(row: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
        # NULLs first, as the ORDER BY says.
        return tuple((0, None) if row[i] is None else (1, row[i]) for i in key_index)

    def key_dict(row: tuple[Any, ...]) -> dict[str, Any]:
        return {k: row[i] for k, i in zip(keys, key_index, strict=True)}

    left = _rows(live, table, columns, keys, projection_name)
    right = _rows(rebuilt, table, columns, keys, projection_name)
    lrow, rrow = next(left, None), next(right, None)
    while lrow is not None or rrow is not None:
        if lrow is not None and (rrow is None or key_of(lrow) < key_of(rrow)):
            first = first or Difference(table.name, key_dict(lrow), ROW_MISSING, lrow, None)
            take("live", lrow)
            lrow = next(left, None)
        elif rrow is not None and (lrow is None or key_of(rrow) < key_of(lrow)):
            first = first or Difference(table.name, key_dict(rrow), ROW_MISSING, None, rrow)
            take("rebuilt", rrow)
            rrow = next(right, None)
        elif lrow is not None and rrow is not None:  # same key on both sides
            if first is None and _encode(lrow) != _encode(rrow):
                # Compared as encoded, as hashed: Decimal("1.0") == Decimal("1.00"), but not in bytes.
                i = next(i for i, (a, b) in enumerate(zip(lrow, rrow, strict=True)) if _canon(a) != _canon(b))
                first = Difference(table.name, key_dict(lrow), columns[i], lrow[i], rrow[i])
            take("live", lrow)
            take("rebuilt", rrow)
            lrow, rrow = next(left, None), next(right, None)
    digest = TableDigest(
        table.name,
        hashes["live"].hexdigest(),
        hashes["rebuilt"].hexdigest(),
        counts["live"],
        counts["rebuilt"],
    )
    return digest, first


def _schema_difference(
    live: Connection, rebuilt: Connection, table: Table
) -> tuple[Difference | None, set[str]]:
    """A column one side stores and the other does not (None if none), and the columns both store."""
    stored = {
        side: {c["name"] for c in inspect(conn).get_columns(table.name)}
        for side, conn in (("live", live), ("rebuilt", rebuilt))
    }
    for name in [*(c.name for c in table.columns), *sorted(stored["live"] | stored["rebuilt"])]:
        in_live, in_rebuilt = name in stored["live"], name in stored["rebuilt"]
        if in_live != in_rebuilt:
            present = "(column)"
            difference = Difference(
                table.name, {}, name, present if in_live else NO_COLUMN, present if in_rebuilt else NO_COLUMN
            )
            return difference, stored["live"] & stored["rebuilt"]
    return None, stored["live"] & stored["rebuilt"]


def _rows(
    conn: Connection, table: Table, columns: Sequence[str], keys: Sequence[str], projection_name: str
) -> Iterator[tuple[Any, ...]]:
    """The table's rows in canonical order, as raw driver values, streamed."""
    # NullType: no result processor, so both sides yield exactly what the database stores.
    selected = [type_coerce(table.c[name], NullType()).label(name) for name in columns]
    query = select(*selected)
    if "projection" in table.c and table in TRACKING_TABLES:
        query = query.where(table.c.projection == projection_name)
    query = query.order_by(*(_ordering(conn, table, name) for name in keys))
    result = conn.execution_options(stream_results=True, yield_per=_STREAM_CHUNK).execute(query)
    if table.name != projection_outbox.name or "value" not in columns:
        for row in result:
            yield tuple(row)
        return
    at = list(columns).index("value")
    for row in result:
        values = list(row)
        values[at] = _without_conclusion_time(values[at])
        yield tuple(values)


def _without_conclusion_time(value: Any) -> Any:
    """A staged derived event's JSON without its recorded_at (see the module docstring)."""
    try:
        event = json.loads(bytes(value))
    except ValueError:
        return value  # not an event: compared as stored
    if not isinstance(event, dict):
        return value
    event.pop(_CONCLUDED_AT, None)
    return json.dumps(event, ensure_ascii=False, sort_keys=True).encode()


def _ordering(conn: Connection, table: Table, name: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = table.c[name]
    if conn.dialect.name == "postgresql":
        compiled = table.c[name].type.compile(dialect=conn.dialect).upper()
        if compiled.startswith(_TEXT_TYPES):
            column = column.collate("C")  # code-point order, as Python compares str
    return column.asc().nulls_first()


def _encode(row: tuple[Any, ...]) -> bytes:
    return ("\x1f".join(_canon(v) for v in row) + "\n").encode("utf-8", "surrogatepass")


def _canon(value: Any) -> str:  # noqa: PLR0911  (one branch per stored type)
    if value is None:
        return "N"
    if isinstance(value, bool):
        return "B1" if value else "B0"
    if isinstance(value, int):
        return f"I{value}"
    if isinstance(value, Decimal):
        return f"D{value}"
    if isinstance(value, float):
        return f"F{value!r}"
    if isinstance(value, str):
        return "S" + json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return "X" + bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return "T" + value.isoformat()
    return f"O{value!r}"
