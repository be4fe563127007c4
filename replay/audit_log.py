"""Cross-check the audit ledger against the bus log: the same events, in the same order, per partition.

The hash chain proves the ledger was not altered after the fact; this proves it also matches
the log it was built from. For each topic-partition the log is read up to the offset the ledger
has applied (projection_tracking), skipping what the ledger skipped: records recorded as poison
and event ids seen before (a re-published event). What remains is the ledger's chain, event for
event, in offset order. Differences are reported as findings: an event of the log missing from
the ledger (deleted), an entry whose event is not in the log there (inserted), the same events in
another order (reordered), and an entry whose stored offset is not the log's (mislabelled).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import select

from projections.audit_ledger import NAME, TOPICS, entries
from projections.tracking import projection_poison, tracked_offsets
from replay.audit import Finding, snapshot
from replay.audit_chain import Tamper, longest_increasing
from replay.audit_errors import AuditError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from hub.ports import EventBus

POLL_RECORDS = 5_000
POLL_TIMEOUT_S = 0.5
MAX_EMPTY_POLLS = 20  # a log that stops delivering before its end offsets is an error, not "done"


async def cross_check_log(engine: Engine, bus: EventBus, *, prefix: str = "") -> list[Finding]:
    """Findings where the ledger disagrees with the log (empty when they agree)."""
    with snapshot(engine) as conn:
        applied = {
            (topic.removeprefix(prefix), partition): offset
            for (topic, partition), offset in tracked_offsets(conn, NAME).items()
        }
        poisoned = _poisoned(conn, prefix)
    expected = await _read_log(bus, prefix, applied, poisoned)
    findings: list[Finding] = []
    with snapshot(engine) as conn:
        stored = _ledger(conn)
        for chain in sorted(set(expected) | set(stored)):
            findings += _compare(chain, expected.get(chain, []), stored.get(chain, []))
    return findings


async def _read_log(
    bus: EventBus, prefix: str, applied: dict[tuple[str, int], int], poisoned: set[tuple[str, int, int]]
) -> dict[tuple[str, int], list[tuple[int, str]]]:
    """Per chain, (offset, event_id) of each event the ledger should hold, in offset order."""
    ends: dict[tuple[str, int], int] = {}
    for name in TOPICS:
        for partition, end in (await bus.end_offsets(f"{prefix}{name}")).items():
            upto = min(end, applied.get((name, partition), -1) + 1)
            if upto > 0:
                ends[name, partition] = upto
    out: dict[tuple[str, int], list[tuple[int, str]]] = {}
    if not ends:
        return out
    seen: set[str] = set()
    consumer = await bus.consumer([f"{prefix}{name}" for name in TOPICS], group=None, from_beginning=True)
    try:
        reached: dict[tuple[str, int], int] = {}
        empty = 0
        while any(reached.get(chain, 0) < end for chain, end in ends.items()):
            batch = await consumer.poll(max_records=POLL_RECORDS, timeout_s=POLL_TIMEOUT_S)
            empty = 0 if batch else empty + 1
            if empty > MAX_EMPTY_POLLS:
                raise AuditError("the log stopped delivering records before the offsets the ledger applied")
            for record in batch:
                chain = (record.topic.removeprefix(prefix), record.partition)
                reached[chain] = max(reached.get(chain, 0), record.offset + 1)
                if record.offset >= ends.get(chain, 0) or (*chain, record.offset) in poisoned:
                    continue
                event_id = _event_id(record.value)
                if event_id is not None and event_id not in seen:
                    seen.add(event_id)
                    out.setdefault(chain, []).append((record.offset, event_id))
    finally:
        await consumer.close()
    return out


def _event_id(value: bytes) -> str | None:
    try:
        doc = json.loads(value)
    except ValueError:  # not JSON: tracking recorded it as poison, the ledger never saw it
        return None
    event_id = doc.get("event_id") if isinstance(doc, dict) else None
    return event_id if isinstance(event_id, str) else None


def _poisoned(conn: Connection, prefix: str) -> set[tuple[str, int, int]]:
    p = projection_poison.c
    rows = conn.execute(select(p.topic, p.partition, p.offset).where(p.projection == NAME))
    return {(topic.removeprefix(prefix), partition, offset) for topic, partition, offset in rows}


def _ledger(conn: Connection) -> dict[tuple[str, int], list[tuple[int, int | None, str]]]:
    c = entries.c
    out: dict[tuple[str, int], list[tuple[int, int | None, str]]] = {}
    query = select(c.topic, c.partition, c.seq, c.offset, c.event_id).order_by(c.topic, c.partition, c.seq)
    for topic, partition, seq, offset, event_id in conn.execute(query):
        out.setdefault((topic, partition), []).append((seq, offset, event_id))
    return out


def _compare(
    chain: tuple[str, int], log: list[tuple[int, str]], ledger: list[tuple[int, int | None, str]]
) -> list[Finding]:
    topic, partition = chain
    log_ids = [event_id for _, event_id in log]
    if log_ids == [event_id for _, _, event_id in ledger]:
        return [
            Finding(
                Tamper.MISLABELLED, topic, partition, seq, offset, event_id, f"the log has it at offset {at}"
            )
            for (seq, offset, event_id), (at, _) in zip(ledger, log, strict=True)
            if offset is not None and offset != at
        ]
    at_offset = {event_id: offset for offset, event_id in log}
    out = [
        Finding(Tamper.INSERTED, topic, partition, seq, offset, event_id, "not in the log on this partition")
        for seq, offset, event_id in ledger
        if event_id not in at_offset
    ]
    in_ledger = {event_id for _, _, event_id in ledger}
    out += [
        Finding(Tamper.DELETED, topic, partition, None, offset, event_id, "in the log, but not in the ledger")
        for offset, event_id in log
        if event_id not in in_ledger
    ]
    rank = {event_id: i for i, event_id in enumerate(log_ids)}
    common = [(seq, offset, event_id) for seq, offset, event_id in ledger if event_id in rank]
    keep = longest_increasing([rank[event_id] for _, _, event_id in common])
    out += [
        Finding(
            Tamper.REORDERED,
            topic,
            partition,
            seq,
            offset,
            event_id,
            f"out of the log's order (the log has it at offset {at_offset[event_id]})",
        )
        for seq, offset, event_id in common
        if rank[event_id] not in keep
    ]
    return out
