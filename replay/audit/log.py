"""Cross-check the audit ledger against the bus log, record by record and byte for byte.

The hash chain proves the ledger was not altered after the fact; this proves the log that
history, as-of and rebuild read is still what the ledger hashed. Every partition of every topic
the ledger follows is read from offset 0 to its real end (past a high watermark that lags, as
on the Tansu test broker) and each record is judged by replay.audit.match: edited (its bytes no
longer hash to its entry), inserted (a record the ledger never applied), or its entry rewritten.
Then, per chain:

- an entry whose offset the log does not hold (a gap, or past the log's end): the **log record
  was deleted**;
- a chain shorter than its signed head seal (a ledger tail deleted with its tracking rows): the
  log records after the last entry are the deleted entries, reported at their offsets.

Findings carry topic, partition, seq (when the ledger has the entry), offset and event id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from projections.audit.ledger import TOPICS, entries
from replay.audit.chain import Tamper
from replay.audit.match import LedgerMatcher, event_id_of
from replay.audit.seal_check import sealed_heads
from replay.audit.verify import Finding, snapshot
from replay.reader import LogReader

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from hub.ports import BusRecord, EventBus

MAX_LISTED = 100  # per chain and kind of finding made here; the rest is summarised


@dataclass
class LogCheck:
    """What `check_log` read and found."""

    records: int = 0
    findings: list[Finding] = field(default_factory=list)


@dataclass
class _Chain:
    """What the read saw of one chain: the gaps in its offsets, and its last offset."""

    last: int = -1
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) offsets missing
    after: list[BusRecord] = field(default_factory=list)  # records past the last entry (truncated chains)


async def cross_check_log(
    engine: Engine, bus: EventBus, *, prefix: str = "", seal_key: bytes | None = None
) -> list[Finding]:
    """Findings where the log no longer matches the ledger (empty when they agree)."""
    return (await check_log(engine, bus, prefix=prefix, seal_key=seal_key)).findings


async def check_log(
    engine: Engine, bus: EventBus, *, prefix: str = "", seal_key: bytes | None = None
) -> LogCheck:
    """Read every chained partition of the log and compare each record with its ledger entry."""
    matcher = LedgerMatcher(engine, prefix=prefix)
    await asyncio.to_thread(matcher.refresh)
    lasts, truncated = await asyncio.to_thread(_ledger_ends, engine, seal_key)
    report = LogCheck()
    seen: dict[tuple[str, int], _Chain] = {}
    topics = [f"{prefix}{name}" for name in TOPICS]
    async with LogReader(bus, topics) as reader:
        until = await reader.last_offsets()
        async for batch in reader.read(until, settle=True):
            report.records += len(batch)
            report.findings += await asyncio.to_thread(matcher.check, batch)
            for record in batch:
                chain = matcher.chain_of(record)
                if chain is None:
                    continue
                state = seen.setdefault(chain, _Chain())
                if record.offset > state.last + 1:
                    state.gaps.append((state.last + 1, record.offset - 1))
                state.last = max(state.last, record.offset)
                missing = truncated.get(chain, (0, 0))[1]
                if missing and record.offset > lasts.get(chain, -1) and len(state.after) < missing:
                    state.after.append(record)
    flagged = {(f.topic, f.partition, f.offset) for f in report.findings}
    report.findings += await asyncio.to_thread(_missing_records, engine, seen, lasts)
    for chain, (count, missing) in truncated.items():
        report.findings += _deleted_tail(chain, count, missing, seen.get(chain, _Chain()), flagged)
    return report


def _ledger_ends(
    engine: Engine, seal_key: bytes | None
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], tuple[int, int]]]:
    """(last entry offset per chain, (entries, entries missing by its signed head) per short chain)."""
    c = entries.c
    with snapshot(engine) as conn:
        rows = conn.execute(
            select(c.topic, c.partition, func.max(c.offset), func.count()).group_by(c.topic, c.partition)
        ).all()
        counts = {(t, p): int(n) for t, p, _, n in rows}
        lasts = {(t, p): int(o) for t, p, o, _ in rows if o is not None}
        heads = sealed_heads(conn, seal_key) if seal_key is not None else {}
    truncated = {
        chain: (counts.get(chain, 0), sealed - counts.get(chain, 0))
        for chain, sealed in heads.items()
        if sealed > counts.get(chain, 0)
    }
    return lasts, truncated


def _missing_records(
    engine: Engine, seen: dict[tuple[str, int], _Chain], lasts: dict[tuple[str, int], int]
) -> list[Finding]:
    """Entries at offsets the log does not hold: in a gap of the read, or past the log's end."""
    out: list[Finding] = []
    with snapshot(engine) as conn:
        for chain in sorted(set(lasts) | set(seen)):
            state = seen.get(chain, _Chain())
            ranges = [*state.gaps]
            if lasts.get(chain, -1) > state.last:
                ranges.append((state.last + 1, lasts[chain]))
            out += _entries_in(conn, chain, ranges)
    return out


def _entries_in(conn: Connection, chain: tuple[str, int], ranges: list[tuple[int, int]]) -> list[Finding]:
    c = entries.c
    out: list[Finding] = []
    for first, last in ranges:
        query = (
            select(c.seq, c.offset, c.event_id)
            .where(c.topic == chain[0], c.partition == chain[1], c.offset.between(first, last))
            .order_by(c.offset)
            .limit(MAX_LISTED)
        )
        out += [
            Finding(
                Tamper.DELETED,
                chain[0],
                chain[1],
                seq,
                offset,
                event_id,
                "log record deleted: the ledger holds this event at this offset, the log has no record there",
            )
            for seq, offset, event_id in conn.execute(query)
        ]
    return out


def _deleted_tail(
    chain: tuple[str, int],
    count: int,
    missing: int,
    state: _Chain,
    flagged: set[tuple[str | None, int | None, int | None]],
) -> list[Finding]:
    """The log records that were the entries cut off a chain's tail, by its signed head's count.

    The records after the last entry, in order, are the entries seq count, count + 1, ...: the
    ledger appends every record it applies, and what it skips (poison, re-published ids) is rare
    enough that a skipped record here only shifts the named positions, never hides the cut.
    """
    out = []
    for i, record in enumerate(state.after[:MAX_LISTED]):
        if (*chain, record.offset) in flagged:
            continue
        out.append(
            Finding(
                Tamper.TRUNCATED,
                chain[0],
                chain[1],
                count + i,
                record.offset,
                event_id_of(record),
                f"ledger tail deleted (entries with their tracking rows): the signed head counts "
                f"{missing:,} entr{'y' if missing == 1 else 'ies'} more; this log record was one of them",
            )
        )
    return out
