"""Per-channel counts kept by the raw archive itself: exact across restarts and processes.

A channel is one source system over one transport (`his` over `mllp`, `hrp` over `file`, `fhir`
over `http`). Its counts live in two small tables beside the raw messages, maintained by
triggers on the raw-message table, so they are written in the same transaction as the message
or status they count (the archive's group commit) whatever process, node or code path wrote it:

- `..._channel_counts`: one row per channel: received (distinct messages archived), bytes,
  resends, where each message is now (pending, translated, archived only: kept but mapped to
  nothing, dead-lettered), events, rows dead-lettered, unclaimed source cells, the ACK codes
  answered (MSA-1 of the stored answer), last receipt, last error;
- `..._channel_minutes`: per channel and UTC minute, messages received and processed
  (translated or dead-lettered), for rates and sparklines; pruned past `KEEP_MINUTES`.

Status moves are applied as differences (old status out, new status in), so a dead letter
retried into a translation moves one count, never adds one. An archive written before these
tables gets them filled once from its messages when they are created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

KEEP_MINUTES = 2 * 24 * 60  # sparkline history kept (two days of per-minute rows per channel)

COUNT_COLUMNS = (
    "received",
    "bytes",
    "resends",
    "pending",
    "translated",
    "archived_only",
    "dead_lettered",
    "events",
    "rows_failed",
    "unclaimed_cells",
    "ack_aa",
    "ack_ae",
    "ack_ar",
    "ever_translated",
    "ever_dead_lettered",
)


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    """One channel's durable counts (see the module docstring)."""

    system: str
    transport: str
    received: int = 0
    bytes: int = 0
    resends: int = 0
    pending: int = 0
    translated: int = 0
    archived_only: int = 0
    dead_lettered: int = 0
    events: int = 0
    rows_failed: int = 0
    unclaimed_cells: int = 0
    ack_aa: int = 0
    ack_ae: int = 0
    ack_ar: int = 0
    ever_translated: int = 0  # translations ended, counted once per move into the status (monotonic)
    ever_dead_lettered: int = 0
    last_received_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelMinute:
    """Messages of one channel received and processed in one UTC minute."""

    system: str
    transport: str
    minute: datetime
    received: int
    translated: int
    dead_lettered: int


def parse_time(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def counts_from_row(row: tuple[object, ...]) -> ChannelCounts:
    """A row of `SELECT_COUNTS` as ChannelCounts."""
    system, transport, *numbers = row[: 2 + len(COUNT_COLUMNS)]
    last_received, last_error, last_error_at = row[2 + len(COUNT_COLUMNS) :]
    values = dict(zip(COUNT_COLUMNS, (int(n or 0) for n in numbers), strict=True))  # type: ignore[call-overload]
    return ChannelCounts(
        str(system),
        str(transport),
        **values,
        last_received_at=parse_time(last_received),
        last_error=None if last_error is None else str(last_error),
        last_error_at=parse_time(last_error_at),
    )


def minute_key(at: datetime) -> str:
    """The key of a minute row: UTC `YYYY-MM-DDTHH:MM` (how both backends write it)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def minute_from_row(row: tuple[object, ...]) -> ChannelMinute:
    system, transport, minute, received, translated, dead = row[:6]
    return ChannelMinute(
        str(system),
        str(transport),
        datetime.strptime(f"{minute}+0000", "%Y-%m-%dT%H:%M%z"),
        int(received or 0),  # type: ignore[call-overload]
        int(translated or 0),  # type: ignore[call-overload]
        int(dead or 0),  # type: ignore[call-overload]
    )


def prune_before(now: datetime) -> str:
    return minute_key(now - timedelta(minutes=KEEP_MINUTES))


def _select_counts(table: str) -> str:
    columns = ", ".join(COUNT_COLUMNS)
    return (
        f"SELECT system, transport, {columns}, last_received_at, last_error, last_error_at"  # nosec B608: constants
        f" FROM {table} ORDER BY system, transport"
    )


# -- SQLite ---------------------------------------------------------------------------------------
# Booleans are 0/1 integers; the ACK code is MSA-1 read from the stored answer's bytes.

_SQ_ARCHIVED = "({r}.status = 'translated' AND {r}.events = 0 AND {r}.skipped > 0)"
_SQ_ACK = (
    "CASE WHEN {r}.answer IS NULL OR instr({r}.answer, CAST('MSA|' AS BLOB)) = 0 THEN NULL"
    " ELSE CAST(substr({r}.answer, instr({r}.answer, CAST('MSA|' AS BLOB)) + 5, 1) AS TEXT) END"
)
_SQ_UNCLAIMED = (
    "CASE WHEN {r}.accounting IS NULL OR NOT json_valid({r}.accounting) THEN 0 ELSE"
    " coalesce((SELECT sum(value) FROM json_each({r}.accounting, '$.unclaimed')), 0) END"
)


def _sq(template: str, row: str) -> str:
    return template.format(r=row)


def _sq_class(row: str, status: str) -> str:
    """1 when `row` counts as `status` (translated excludes archived-only), else 0."""
    archived = _sq(_SQ_ARCHIVED, row)
    if status == "archived_only":
        return archived
    if status == "translated":
        return f"({row}.status = 'translated' AND NOT {archived})"
    return f"({row}.status = '{status}')"


def _sq_ack_is(row: str, letter: str) -> str:
    """1 when `row`'s stored answer is an ACK whose MSA-1 ends in `letter` (AA/CA: A), else 0."""
    return f"(coalesce({_sq(_SQ_ACK, row)}, '') = '{letter}')"


SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS raw_channel_counts (
    system TEXT NOT NULL,
    transport TEXT NOT NULL,
    {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COUNT_COLUMNS)},
    last_received_at TEXT,
    last_error TEXT,
    last_error_at TEXT,
    PRIMARY KEY (system, transport)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS raw_channel_minutes (
    system TEXT NOT NULL,
    transport TEXT NOT NULL,
    minute TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    translated INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (system, transport, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS raw_channel_listeners (
    system TEXT NOT NULL,
    transport TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (system, transport, node)
) WITHOUT ROWID;
"""

SQLITE_TRIGGERS = (  # SQL built from this module's constants; nothing from outside
    f"""
CREATE TRIGGER IF NOT EXISTS raw_channel_on_insert AFTER INSERT ON raw_messages BEGIN
    INSERT INTO raw_channel_counts
        (system, transport, received, bytes, pending, ack_aa, ack_ae, ack_ar, last_received_at)
        VALUES (NEW.system, NEW.transport, 1, NEW.size, NEW.status = 'pending',
            {_sq_ack_is("NEW", "A")}, {_sq_ack_is("NEW", "E")}, {_sq_ack_is("NEW", "R")}, NEW.received_at)
        ON CONFLICT (system, transport) DO UPDATE SET
            received = received + 1, bytes = bytes + excluded.bytes, pending = pending + excluded.pending,
            ack_aa = ack_aa + excluded.ack_aa, ack_ae = ack_ae + excluded.ack_ae,
            ack_ar = ack_ar + excluded.ack_ar,
            last_received_at = max(coalesce(last_received_at, ''), excluded.last_received_at);
    INSERT INTO raw_channel_minutes (system, transport, minute, received)
        VALUES (NEW.system, NEW.transport, substr(NEW.received_at, 1, 16), 1)
        ON CONFLICT (system, transport, minute) DO UPDATE SET received = received + 1;
END;
-- The archive inserts messages as pending with nothing counted yet; should a row ever arrive
-- otherwise, this adds what the fast trigger above leaves out.
CREATE TRIGGER IF NOT EXISTS raw_channel_on_insert_done AFTER INSERT ON raw_messages
WHEN NEW.status != 'pending' OR NEW.events != 0 OR NEW.failures != 0 OR NEW.resends != 0
    OR NEW.accounting IS NOT NULL BEGIN
    UPDATE raw_channel_counts SET
        resends = resends + NEW.resends,
        translated = translated + {_sq_class("NEW", "translated")},
        archived_only = archived_only + {_sq_class("NEW", "archived_only")},
        dead_lettered = dead_lettered + {_sq_class("NEW", "dead_lettered")},
        events = events + NEW.events, rows_failed = rows_failed + NEW.failures,
        unclaimed_cells = unclaimed_cells + {_sq(_SQ_UNCLAIMED, "NEW")},
        ever_translated = ever_translated + (NEW.status = 'translated'),
        ever_dead_lettered = ever_dead_lettered + (NEW.status = 'dead_lettered')
        WHERE system = NEW.system AND transport = NEW.transport;
END;
CREATE TRIGGER IF NOT EXISTS raw_channel_on_status
AFTER UPDATE OF status, events, skipped, failures, accounting ON raw_messages BEGIN
    UPDATE raw_channel_counts SET
        pending = pending - {_sq_class("OLD", "pending")} + {_sq_class("NEW", "pending")},
        translated = translated - {_sq_class("OLD", "translated")} + {_sq_class("NEW", "translated")},
        archived_only = archived_only - {_sq_class("OLD", "archived_only")}
            + {_sq_class("NEW", "archived_only")},
        dead_lettered = dead_lettered - {_sq_class("OLD", "dead_lettered")}
            + {_sq_class("NEW", "dead_lettered")},
        events = events - OLD.events + NEW.events,
        rows_failed = rows_failed - OLD.failures + NEW.failures,
        unclaimed_cells = unclaimed_cells - {_sq(_SQ_UNCLAIMED, "OLD")} + {_sq(_SQ_UNCLAIMED, "NEW")},
        ever_translated = ever_translated + (NEW.status = 'translated' AND OLD.status != 'translated'),
        ever_dead_lettered = ever_dead_lettered
            + (NEW.status = 'dead_lettered' AND OLD.status != 'dead_lettered'),
        last_error = CASE WHEN NEW.status = 'dead_lettered'
            THEN coalesce(NEW.error, NEW.failures || ' unit(s) dead-lettered, see GET /dlq')
            ELSE last_error END,
        last_error_at = CASE WHEN NEW.status = 'dead_lettered'
            THEN coalesce(NEW.processed_at, last_error_at) ELSE last_error_at END
        WHERE system = NEW.system AND transport = NEW.transport;
    INSERT INTO raw_channel_minutes (system, transport, minute, translated, dead_lettered)
        SELECT NEW.system, NEW.transport, substr(NEW.processed_at, 1, 16),
            NEW.status = 'translated', NEW.status = 'dead_lettered'
        WHERE NEW.status != OLD.status AND NEW.status != 'pending' AND NEW.processed_at IS NOT NULL
        ON CONFLICT (system, transport, minute) DO UPDATE SET
            translated = translated + excluded.translated,
            dead_lettered = dead_lettered + excluded.dead_lettered;
END;
CREATE TRIGGER IF NOT EXISTS raw_channel_on_answer AFTER UPDATE OF answer ON raw_messages
WHEN OLD.answer IS NOT NEW.answer BEGIN
    UPDATE raw_channel_counts SET
        ack_aa = ack_aa - {_sq_ack_is("OLD", "A")} + {_sq_ack_is("NEW", "A")},
        ack_ae = ack_ae - {_sq_ack_is("OLD", "E")} + {_sq_ack_is("NEW", "E")},
        ack_ar = ack_ar - {_sq_ack_is("OLD", "R")} + {_sq_ack_is("NEW", "R")}
        WHERE system = NEW.system AND transport = NEW.transport;
END;
CREATE TRIGGER IF NOT EXISTS raw_channel_on_resend AFTER UPDATE OF resends ON raw_messages BEGIN
    UPDATE raw_channel_counts SET resends = resends - OLD.resends + NEW.resends
        WHERE system = NEW.system AND transport = NEW.transport;
END;
"""  # nosec B608
)


def _sq_sum_class(status: str) -> str:
    return f"sum({_sq_class('m', status)})"


SQLITE_BACKFILL = (  # SQL built from this module's constants; nothing from outside
    f"""
INSERT INTO raw_channel_counts (system, transport, {", ".join(COUNT_COLUMNS)}, last_received_at)
SELECT m.system, m.transport, count(*), sum(m.size), sum(m.resends),
    {_sq_sum_class("pending")}, {_sq_sum_class("translated")}, {_sq_sum_class("archived_only")},
    {_sq_sum_class("dead_lettered")}, sum(m.events), sum(m.failures), sum({_sq(_SQ_UNCLAIMED, "m")}),
    sum(coalesce({_sq(_SQ_ACK, "m")}, '') = 'A'), sum(coalesce({_sq(_SQ_ACK, "m")}, '') = 'E'),
    sum(coalesce({_sq(_SQ_ACK, "m")}, '') = 'R'),
    sum(m.status = 'translated'), sum(m.status = 'dead_lettered'),
    max(m.received_at)
FROM raw_messages AS m GROUP BY m.system, m.transport;
"""  # nosec B608
)

SQLITE_SELECT_COUNTS = _select_counts("raw_channel_counts")
SQLITE_SELECT_MINUTES = (
    "SELECT system, transport, minute, received, translated, dead_lettered FROM raw_channel_minutes"
    " WHERE minute >= ? ORDER BY system, transport, minute"
)
SQLITE_PRUNE = "DELETE FROM raw_channel_minutes WHERE minute < ?"


INSTALLED = "raw_channel_on_insert_done"  # the trigger created last: its presence means all are


def sqlite_install(conn: object) -> None:
    """Create the tables and triggers; fill the counts once from an archive written before them."""
    import sqlite3  # noqa: PLC0415  (typing the connection without importing sqlite3 at module level)

    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"a sqlite3 connection is needed, not {type(conn).__name__}")
    conn.executescript(SQLITE_SCHEMA)
    have = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (INSTALLED,)).fetchone()
    if have is not None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Checked again under the write lock: another process may have installed them meanwhile.
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (INSTALLED,)).fetchone() is None:
            conn.execute("DELETE FROM raw_channel_counts")
            conn.execute(SQLITE_BACKFILL)
            for statement in _statements(SQLITE_TRIGGERS):
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """A trigger script split at each `END;` (the statements inside a trigger end in `;` too)."""
    return [part.strip() + "\nEND" for part in script.split("END;") if part.strip()]


# -- PostgreSQL -----------------------------------------------------------------------------------

_PG_ARCHIVED = "({r}.status = 'translated' AND {r}.events = 0 AND {r}.skipped > 0)"
_PG_ACK = "substring(convert_from({r}.answer, 'LATIN1') from 'MSA\\|.(.)')"
_PG_UNCLAIMED = (
    "coalesce((SELECT sum(value::bigint) FROM jsonb_each_text(CAST({r}.accounting AS jsonb) -> 'unclaimed')"
    " WHERE {r}.accounting IS NOT NULL), 0)"
)


def _pg_class(row: str, status: str) -> str:
    archived = _PG_ARCHIVED.format(r=row)
    if status == "archived_only":
        expr = archived
    elif status == "translated":
        expr = f"({row}.status = 'translated' AND NOT {archived})"
    else:
        expr = f"({row}.status = '{status}')"
    return f"CAST({expr} AS integer)"


def _pg_ack(row: str, letter: str) -> str:
    return f"CAST(coalesce({_PG_ACK.format(r=row)}, '') = '{letter}' AS integer)"


def _pg_minute(expr: str) -> str:
    return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')"


PG_SCHEMA = (  # SQL built from this module's constants; nothing from outside
    f"""
CREATE TABLE IF NOT EXISTS hub_raw_channel_counts (
    system TEXT NOT NULL,
    transport TEXT NOT NULL,
    {", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in COUNT_COLUMNS)},
    last_received_at TIMESTAMPTZ,
    last_error TEXT,
    last_error_at TIMESTAMPTZ,
    PRIMARY KEY (system, transport)
);
CREATE TABLE IF NOT EXISTS hub_raw_channel_minutes (
    system TEXT NOT NULL,
    transport TEXT NOT NULL,
    minute TEXT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    translated BIGINT NOT NULL DEFAULT 0,
    dead_lettered BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (system, transport, minute)
);
CREATE TABLE IF NOT EXISTS hub_raw_channel_listeners (
    system TEXT NOT NULL,
    transport TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (system, transport, node)
);
CREATE OR REPLACE FUNCTION hub_raw_channel_count() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO hub_raw_channel_counts AS c
            (system, transport, {", ".join(COUNT_COLUMNS)}, last_received_at)
        VALUES (NEW.system, NEW.transport, 1, NEW.size, NEW.resends, {_pg_class("NEW", "pending")},
            {_pg_class("NEW", "translated")}, {_pg_class("NEW", "archived_only")},
            {_pg_class("NEW", "dead_lettered")}, NEW.events, NEW.failures, {_PG_UNCLAIMED.format(r="NEW")},
            {_pg_ack("NEW", "A")}, {_pg_ack("NEW", "E")}, {_pg_ack("NEW", "R")},
            CAST(NEW.status = 'translated' AS integer), CAST(NEW.status = 'dead_lettered' AS integer),
            NEW.received_at)
        ON CONFLICT (system, transport) DO UPDATE SET
            {", ".join(f"{c} = c.{c} + excluded.{c}" for c in COUNT_COLUMNS)},
            last_received_at = greatest(c.last_received_at, excluded.last_received_at);
        INSERT INTO hub_raw_channel_minutes AS m (system, transport, minute, received)
        VALUES (NEW.system, NEW.transport, {_pg_minute("NEW.received_at")}, 1)
        ON CONFLICT (system, transport, minute) DO UPDATE SET received = m.received + 1;
        RETURN NULL;
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status AND NEW.events = OLD.events AND NEW.skipped = OLD.skipped
        AND NEW.failures = OLD.failures AND NEW.accounting IS NOT DISTINCT FROM OLD.accounting
        AND NEW.answer IS NOT DISTINCT FROM OLD.answer AND NEW.resends = OLD.resends THEN
        RETURN NULL;  -- a published flag or a lease: nothing counted moved
    END IF;
    UPDATE hub_raw_channel_counts SET
        resends = resends - OLD.resends + NEW.resends,
        pending = pending - {_pg_class("OLD", "pending")} + {_pg_class("NEW", "pending")},
        translated = translated - {_pg_class("OLD", "translated")} + {_pg_class("NEW", "translated")},
        archived_only = archived_only - {_pg_class("OLD", "archived_only")}
            + {_pg_class("NEW", "archived_only")},
        dead_lettered = dead_lettered - {_pg_class("OLD", "dead_lettered")}
            + {_pg_class("NEW", "dead_lettered")},
        events = events - OLD.events + NEW.events,
        rows_failed = rows_failed - OLD.failures + NEW.failures,
        unclaimed_cells = unclaimed_cells - {_PG_UNCLAIMED.format(r="OLD")} + {_PG_UNCLAIMED.format(r="NEW")},
        ack_aa = ack_aa - {_pg_ack("OLD", "A")} + {_pg_ack("NEW", "A")},
        ack_ae = ack_ae - {_pg_ack("OLD", "E")} + {_pg_ack("NEW", "E")},
        ack_ar = ack_ar - {_pg_ack("OLD", "R")} + {_pg_ack("NEW", "R")},
        ever_translated = ever_translated
            + CAST(NEW.status = 'translated' AND OLD.status <> 'translated' AS integer),
        ever_dead_lettered = ever_dead_lettered
            + CAST(NEW.status = 'dead_lettered' AND OLD.status <> 'dead_lettered' AS integer),
        last_error = CASE WHEN NEW.status = 'dead_lettered' AND OLD.status <> 'dead_lettered'
            THEN coalesce(NEW.error, NEW.failures || ' unit(s) dead-lettered, see GET /dlq')
            ELSE last_error END,
        last_error_at = CASE WHEN NEW.status = 'dead_lettered' AND OLD.status <> 'dead_lettered'
            THEN coalesce(NEW.processed_at, last_error_at) ELSE last_error_at END
        WHERE system = NEW.system AND transport = NEW.transport;
    IF NEW.status <> OLD.status AND NEW.status <> 'pending' AND NEW.processed_at IS NOT NULL THEN
        INSERT INTO hub_raw_channel_minutes AS m (system, transport, minute, translated, dead_lettered)
        VALUES (NEW.system, NEW.transport, {_pg_minute("NEW.processed_at")},
            CAST(NEW.status = 'translated' AS integer), CAST(NEW.status = 'dead_lettered' AS integer))
        ON CONFLICT (system, transport, minute) DO UPDATE SET
            translated = m.translated + excluded.translated,
            dead_lettered = m.dead_lettered + excluded.dead_lettered;
    END IF;
    RETURN NULL;
END
$fn$;
"""  # nosec B608
)


def _pg_sum(status: str) -> str:
    return f"sum({_pg_class('m', status)})"


PG_INSTALL = (  # SQL built from this module's constants; nothing from outside
    f"""
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'hub_raw_channel_count') THEN
        DELETE FROM hub_raw_channel_counts;
        INSERT INTO hub_raw_channel_counts (system, transport, {", ".join(COUNT_COLUMNS)}, last_received_at)
        SELECT m.system, m.transport, count(*), sum(m.size), sum(m.resends),
            {_pg_sum("pending")}, {_pg_sum("translated")}, {_pg_sum("archived_only")},
            {_pg_sum("dead_lettered")}, sum(m.events), sum(m.failures), sum({_PG_UNCLAIMED.format(r="m")}),
            sum({_pg_ack("m", "A")}), sum({_pg_ack("m", "E")}), sum({_pg_ack("m", "R")}),
            sum(CAST(m.status = 'translated' AS integer)), sum(CAST(m.status = 'dead_lettered' AS integer)),
            max(m.received_at)
        FROM hub_raw_messages AS m GROUP BY m.system, m.transport;
        CREATE TRIGGER hub_raw_channel_count AFTER INSERT OR UPDATE ON hub_raw_messages
            FOR EACH ROW EXECUTE FUNCTION hub_raw_channel_count();
    END IF;
END
$do$;
"""  # nosec B608
)

PG_SELECT_COUNTS = _select_counts("hub_raw_channel_counts")
PG_SELECT_MINUTES = (
    "SELECT system, transport, minute, received, translated, dead_lettered FROM hub_raw_channel_minutes"
    " WHERE minute >= :since ORDER BY system, transport, minute"
)
PG_PRUNE = "DELETE FROM hub_raw_channel_minutes WHERE minute < :before"


@dataclass(frozen=True, slots=True)
class ListenerReport:
    """What one process said about one of its transports (`hub serve` reports every few seconds)."""

    system: str
    transport: str
    node: str
    state: str  # listening | stopped | erroring
    detail: str | None
    seen_at: datetime


def listener_from_row(row: tuple[object, ...]) -> ListenerReport:
    system, transport, node, state, detail, seen_at = row[:6]
    seen = parse_time(seen_at)
    if seen is None:
        raise ValueError("a listener report without its time")  # a NOT NULL column: never
    return ListenerReport(
        str(system), str(transport), str(node), str(state), None if detail is None else str(detail), seen
    )


SQLITE_SELECT_LISTENERS = (
    "SELECT system, transport, node, state, detail, seen_at FROM raw_channel_listeners ORDER BY seen_at"
)
SQLITE_REPORT_LISTENER = (
    "INSERT INTO raw_channel_listeners (system, transport, node, state, detail, seen_at) VALUES (?,?,?,?,?,?)"
    " ON CONFLICT (system, transport, node) DO UPDATE SET state = excluded.state, detail = excluded.detail,"
    " seen_at = excluded.seen_at"
)
PG_SELECT_LISTENERS = (
    "SELECT system, transport, node, state, detail, seen_at FROM hub_raw_channel_listeners ORDER BY seen_at"
)
PG_REPORT_LISTENER = (
    "INSERT INTO hub_raw_channel_listeners (system, transport, node, state, detail, seen_at)"
    " VALUES (:system, :transport, :node, :state, :detail, :seen_at)"
    " ON CONFLICT (system, transport, node) DO UPDATE SET state = excluded.state, detail = excluded.detail,"
    " seen_at = excluded.seen_at"
)
# A process's reports older than this are forgotten (the process is gone; each start is a new node).
LISTENER_FORGET = timedelta(days=1)
SQLITE_FORGET_LISTENERS = "DELETE FROM raw_channel_listeners WHERE seen_at < ?"
PG_FORGET_LISTENERS = "DELETE FROM hub_raw_channel_listeners WHERE seen_at < :before"
