"""Does a log record still hash to its ledger entry? One rule for verify, history, as-of and rebuild.

For a record of a chained topic at (topic, partition, offset):

- the ledger holds an entry at that offset: the record, hashed exactly as stored
  (projections.audit.record), must give the entry's `record_hash`; otherwise the **log record
  was edited** (its value, key, headers or timestamp). When it does, the entry's event bytes must
  be the record's event (same bytes, or the same event after decoding and upcasting); otherwise
  the **ledger entry was rewritten** (its hashes recomputed, or the chain check sees it too).
  An entry applied before records were hashed (no record_hash) is compared by event only.
- no entry at that offset, but the ledger has read past it (projection_tracking): the record
  must be one the ledger skipped, poison (projection_poison) or a re-published event id; else a
  record the ledger applied lost its entry (**deleted** from the ledger), or the ledger never
  saw this record there (**inserted** into the log).
- the ledger has not read that far: not checked (the ledger lags the log; `hub audit verify`
  brings it up to date first).

Records of topics the ledger does not follow (raw, dead letters) are never judged. A record
whose value changed shows what differs: when the stored record hash is that of the record the
hub itself publishes for the entry's event (hub.ports.event_out_record, the usual case), the
original is rebuilt and compared part by part and field by field; otherwise the parts are named
that cannot be told apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from hub.ports import BusRecord, event_out_record
from projections.audit.ledger import NAME, TOPICS, entries
from projections.audit.record import record_digest
from projections.runtime.decode import Poison, decode
from projections.runtime.tracking import projection_applied_events, projection_poison, tracked_offsets
from projections.runtime.upsert import chunks, in_values
from replay.audit.chain import Tamper
from replay.audit.verify import Finding, snapshot, stored_bytes
from replay.errors import RecordTampered
from schemas.catalogue import EVENT_ADAPTER, dump_event

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy import Connection, Engine

logger = structlog.get_logger()

MAX_FIELDS = 5  # differing JSON fields named per finding


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    event_id: str
    entry_bytes: bytes
    record_hash: str | None


class LedgerMatcher:
    """Judges batches of log records against the ledger (see the module docstring). Thread-safe use:
    one `check` at a time; each call reads the ledger in one snapshot."""

    def __init__(self, engine: Engine, *, prefix: str = "") -> None:
        self.engine = engine
        self.prefix = prefix
        self._chained = {f"{prefix}{name}": name for name in TOPICS}
        self._tracked: dict[tuple[str, int], int] | None = None
        self._poison: set[tuple[str, int, int]] = set()

    def chain_of(self, record: BusRecord) -> tuple[str, int] | None:
        name = self._chained.get(record.topic)
        return None if name is None else (name, record.partition)

    def tracked(self) -> dict[tuple[str, int], int]:
        """Last offset the ledger applied per chain (catalogue topic names)."""
        return self._tracked if self._tracked is not None else self.refresh()

    def refresh(self) -> dict[tuple[str, int], int]:
        """Re-read how far the ledger got and which records it skipped as poison."""
        with snapshot(self.engine) as conn:
            tracked = {
                (topic.removeprefix(self.prefix), partition): offset
                for (topic, partition), offset in tracked_offsets(conn, NAME).items()
            }
            p = projection_poison.c
            rows = conn.execute(select(p.topic, p.partition, p.offset).where(p.projection == NAME))
            self._poison = {(t.removeprefix(self.prefix), part, off) for t, part, off in rows}
        self._tracked = tracked
        return tracked

    def check(self, records: Sequence[BusRecord]) -> list[Finding]:
        """Findings for the records of `records` that no longer match the ledger (empty: all match)."""
        by_chain: dict[tuple[str, int], list[BusRecord]] = {}
        for record in records:
            chain = self.chain_of(record)
            if chain is not None:
                by_chain.setdefault(chain, []).append(record)
        if not by_chain:
            return []
        tracked = self.tracked()
        out: list[Finding] = []
        with snapshot(self.engine) as conn:
            for chain, mine in by_chain.items():
                out += self._check_chain(conn, chain, mine, tracked.get(chain, -1))
        return out

    def _check_chain(
        self, conn: Connection, chain: tuple[str, int], records: list[BusRecord], tracked: int
    ) -> list[Finding]:
        held = ledger_window(conn, chain, (r.offset for r in records))
        out: list[Finding] = []
        unheld: list[BusRecord] = []
        for record in records:
            entry = held.get(record.offset)
            if entry is not None:
                finding = compare(chain, record, entry)
                if finding is not None:
                    out.append(finding)
            elif record.offset <= tracked and (*chain, record.offset) not in self._poison:
                unheld.append(record)
        replaced = [f for f in out if f.kind is Tamper.EDITED and f.event_id is not None]
        if replaced:
            out = _replaced(conn, out, {r.offset: r for r in records})
        if unheld:
            out += _unheld(conn, chain, unheld)
        return out


def ledger_window(conn: Connection, chain: tuple[str, int], offsets: Iterable[int]) -> dict[int, _Entry]:
    """The entries of `chain` at `offsets` (a contiguous read: one range query; scattered: by list)."""
    wanted = sorted(set(offsets))
    if not wanted:
        return {}
    c = entries.c
    columns = (c.offset, c.seq, c.event_id, c.entry_bytes, c.record_hash)
    mine = (c.topic == chain[0], c.partition == chain[1])
    if wanted[-1] - wanted[0] < 2 * len(wanted):  # a batch of a replay: nearly every offset in between
        queries = [select(*columns).where(*mine, c.offset.between(wanted[0], wanted[-1]))]
    else:  # history's few records of one subject, far apart in a long partition
        queries = [
            select(*columns).where(*mine, in_values(conn, c.offset, part)) for part in chunks(conn, wanted)
        ]
    return {
        int(offset): _Entry(int(seq), event_id, stored_bytes(data), record_hash)
        for query in queries
        for offset, seq, event_id, data, record_hash in conn.execute(query)
    }


def compare(chain: tuple[str, int], record: BusRecord, entry: _Entry) -> Finding | None:
    """None when `record` is what `entry` hashed, else what differs."""
    topic, partition = chain
    if entry.record_hash is not None and record_digest(record).hex() != entry.record_hash:
        return Finding(
            Tamper.EDITED,
            topic,
            partition,
            entry.seq,
            record.offset,
            entry.event_id,
            "log record changed since the ledger hashed it: " + _what_differs(record, entry),
        )
    if record.value == entry.entry_bytes or _canonical(record) == entry.entry_bytes:
        return None
    if entry.record_hash is None:  # an entry from before records were hashed: the event is all there is
        return Finding(
            Tamper.EDITED,
            topic,
            partition,
            entry.seq,
            record.offset,
            entry.event_id,
            "log record's event differs from its ledger entry: "
            + _value_diff(record.value, entry.entry_bytes),
        )
    return Finding(
        Tamper.REWRITTEN,
        topic,
        partition,
        entry.seq,
        record.offset,
        entry.event_id,
        "ledger entry no longer holds its log record's event (the record still hashes to the entry): "
        + _value_diff(record.value, entry.entry_bytes),
    )


def _canonical(record: BusRecord) -> bytes | None:
    result = decode(record)
    return None if isinstance(result, Poison) else dump_event(result)


def _what_differs(record: BusRecord, entry: _Entry) -> str:
    """Name the changed parts of `record`, rebuilding the original from the entry when possible."""
    original = _original(record, entry)
    if original is None:
        parts = "value" if record.value != entry.entry_bytes else "key, headers or timestamp"
        return f"{parts} (the original record cannot be rebuilt to compare)"
    diffs = []
    if record.value != original.value:
        diffs.append("value (" + _value_diff(record.value, original.value) + ")")
    if record.key != original.key:
        diffs.append(f"key {original.key!r} -> {record.key!r}")
    if record.headers != original.headers:
        diffs.append("headers")
    if record.timestamp_ms != original.timestamp_ms:
        diffs.append(f"timestamp {original.timestamp_ms} -> {record.timestamp_ms}")
    return ", ".join(diffs) or "unknown part"


def _original(record: BusRecord, entry: _Entry) -> BusRecord | None:
    """The record the hub publishes for the entry's event, if that is what the ledger hashed."""
    try:
        out = event_out_record(EVENT_ADAPTER.validate_json(entry.entry_bytes))
    except ValueError:
        return None
    rebuilt = BusRecord(
        record.topic, record.partition, record.offset, out.key, out.value, out.headers, out.timestamp_ms or 0
    )
    return rebuilt if record_digest(rebuilt).hex() == entry.record_hash else None


def _value_diff(now: bytes, before: bytes) -> str:
    """The JSON fields that differ between two event encodings (dotted paths), or 'bytes'."""
    try:
        a, b = json.loads(now), json.loads(before)
    except ValueError:
        return "value is not JSON any more" if before else "bytes differ"
    paths = sorted(_diff_paths(a, b, ""))
    if not paths:
        return "same fields, other bytes (re-encoded)"
    more = f" and {len(paths) - MAX_FIELDS} more" if len(paths) > MAX_FIELDS else ""
    return "field(s) " + ", ".join(paths[:MAX_FIELDS]) + more


def _diff_paths(a: Any, b: Any, at: str) -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in set(a) | set(b):
            out |= _diff_paths(a.get(key), b.get(key), f"{at}.{key}" if at else str(key))
        return out
    return set() if a == b else {at or "(whole value)"}


def _held(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int | None, bytes]]:
    """Offset and event bytes of the entries holding `ids`."""
    c = entries.c
    out: dict[str, tuple[int | None, bytes]] = {}
    for chunk in chunks(conn, list(ids)):
        query = select(c.event_id, c.offset, c.entry_bytes).where(in_values(conn, c.event_id, chunk))
        for event_id, offset, data in conn.execute(query):
            out[event_id] = (offset, stored_bytes(data))
    return out


def _replaced(conn: Connection, found: list[Finding], records: dict[int, BusRecord]) -> list[Finding]:
    """Edited records that now hold another event: moved there from another offset, or new (inserted)."""
    other = {
        f.offset: rid
        for f in found
        if f.kind is Tamper.EDITED
        and f.offset is not None
        and (rid := event_id_of(records[f.offset])) is not None
        and rid != f.event_id
    }
    held = _held(conn, list(set(other.values())))
    out = []
    for f in found:
        rid = None if f.offset is None else other.get(f.offset)
        if rid is None:
            out.append(f)
        elif rid in held:
            at = held[rid][0]
            detail = f"log record moved: it holds the event the ledger has at offset {at}, not {f.event_id}"
            out.append(replace(f, kind=Tamper.REORDERED, detail=detail))
        else:
            detail = (
                f"log record of event {rid}, never applied to the ledger, stands where it has {f.event_id}"
            )
            out.append(replace(f, kind=Tamper.INSERTED, event_id=rid, detail=detail))
    return out


def _unheld(conn: Connection, chain: tuple[str, int], records: list[BusRecord]) -> list[Finding]:
    """Records the ledger read past without an entry: skipped duplicates, or tampering."""
    ids = {r.offset: event_id_of(r) for r in records}
    named = [i for i in ids.values() if i is not None]
    held = _held(conn, named)
    applied: set[str] = set()
    a = projection_applied_events.c
    for chunk in chunks(conn, named):
        applied.update(
            conn.execute(
                select(a.event_id).where(a.projection == NAME, in_values(conn, a.event_id, chunk))
            ).scalars()
        )
    out = []
    for record in records:
        event_id = ids[record.offset]
        if event_id in held:
            first_offset, data = held[event_id]
            if record.value == data or _canonical(record) == data:
                continue  # a re-published event: the ledger holds its first record, and this is the same
            detail = (
                f"a second record of event {event_id} with other content ("
                + _value_diff(record.value, data)
                + f"); the ledger holds the one at offset {first_offset}"
            )
            out.append(Finding(Tamper.INSERTED, chain[0], chain[1], None, record.offset, event_id, detail))
            continue
        if event_id is not None and event_id in applied:
            kind, detail = Tamper.DELETED, "the ledger applied this record's event but holds no entry for it"
        else:
            kind, detail = Tamper.INSERTED, "a record the ledger never applied, at an offset it had read past"
        out.append(Finding(kind, chain[0], chain[1], None, record.offset, event_id, detail))
    return out


def event_id_of(record: BusRecord) -> str | None:
    try:
        doc = json.loads(record.value)
    except ValueError:
        return None
    event_id = doc.get("event_id") if isinstance(doc, dict) else None
    return event_id if isinstance(event_id, str) else None


def refuse_tampered(findings: Sequence[Finding], *, what: str, accept: bool) -> None:
    """Raise RecordTampered naming the first record in `findings`, unless `accept` (then log each)."""
    if not findings:
        return
    first = min(findings, key=lambda f: (f.topic or "", f.partition or 0, f.offset or 0))
    if accept:
        for finding in findings:
            logger.warning(
                "replay_read_tampered_record",
                replay=what,
                kind=finding.kind.value,
                where=finding.where(),
                detail=finding.detail,
            )
        return
    raise RecordTampered(
        f"{what} refused: log record {first.where()} no longer matches its audit ledger entry "
        f"({first.kind.value}: {first.detail}); run `hub audit verify`, or pass --accept-tampered "
        f"to {what} from the log as it is now ({len(findings)} such record(s) in this batch)"
    )
