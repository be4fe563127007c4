"""`verify`: re-walk every chain of the audit ledger and say which entry was tampered with, and where.

For each (topic, partition) the entries are read in seq order and folded from the genesis hash
using only their bytes (see projections.audit.ledger for the rule). A chain whose stored
prev_hash / entry_hash / seq agree with that fold everywhere is intact; one that does not is
read again and analysed by replay.audit.chain, which names each edited, deleted, inserted or
reordered entry. Independently of the chain:

- every entry's bytes must be an event whose event_id, subject, type and recorded_at are the
  row's (`deep=True` also validates the event model and checks the bytes are canonical);
- the ledger's checkpoints must match the fold at their counts: its signed seals (HMAC with a
  key derived from HUB_SECRET_KEY, projections.audit.seals) when `seal_key` is given, the
  unsigned checkpoint rows, and an exported `Checkpoint` when given. A tail rewritten
  consistently, every hash recomputed, passes the chain checks but not a seal taken before it;
  a tail cut off (entries and tracking rows together) falls short of the chain's head seal; a
  seal whose MAC does not verify is forged, and a chain without a head seal lost it;
- the tracking rows (projection_applied_events) must name the same event ids as the entries:
  an applied event without an entry was deleted, an entry whose event was never applied was
  inserted.

Reading is streamed; only a chain found damaged is held in memory (without its bytes). Comparing
every log record's bytes with its entry is replay.audit.log's job.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import exists, func, inspect, select

from projections.audit.ledger import GENESIS_HASH, NAME, entries
from projections.runtime.tracking import projection_applied_events
from replay.audit.chain import ChainRow, Tamper, analyse
from replay.audit.report import Finding, VerifyReport, order
from replay.audit.seal_check import Mark, appended, seal_marks, sealed_heads, stored_marks
from schemas.catalogue import EVENT_ADAPTER, dump_event

__all__ = ["Finding", "VerifyReport", "cut_chains", "snapshot", "stored_bytes", "verify"]

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager

    from sqlalchemy import Connection, Engine, Row

    from replay.audit.checkpoint import Checkpoint

logger = structlog.get_logger()

STREAM_BATCH = 5_000
MAX_LISTED = 100  # per kind of tracking evidence; the rest is summarised in one finding
_GENESIS = bytes(32)
_FIELDS = ("event_id", "subject", "type")


def verify(
    engine: Engine,
    *,
    checkpoint: Checkpoint | None = None,
    deep: bool = False,
    seal_key: bytes | None = None,
) -> VerifyReport:
    """Check the whole ledger; with `checkpoint`, also that every chain still passes through it;
    with `seal_key`, also against the signed checkpoints the ledger keeps."""
    started = time.perf_counter()
    report = VerifyReport(checkpoint_checked=checkpoint is not None)
    with snapshot(engine) as conn:
        if not inspect(conn).has_table(entries.name):
            report.elapsed_s = time.perf_counter() - started
            return report
        marks = stored_marks(conn)
        heads: dict[tuple[str, int], int] = {}
        if seal_key is not None:
            report.seals_checked, heads = seal_marks(conn, seal_key, marks, report.findings)
        if checkpoint is not None:
            source = f"exported checkpoint of {checkpoint.created_at.isoformat()}"
            for pc in checkpoint.partitions:
                marks.setdefault((pc.topic, pc.partition), []).extend(
                    Mark(m.count, m.head_hash, source) for m in pc.all_marks()
                )
        missing, unknown = _tracking_evidence(conn)
        c = entries.c
        chains = {(t, p) for t, p in conn.execute(select(c.topic, c.partition).distinct())}
        for topic, partition in sorted(chains | set(marks)):
            report.chains += 1
            walk = _Walk(topic, partition, marks.get((topic, partition), []), deep=deep)
            for row in _stream(conn, topic, partition, light=False):
                walk.step(row)
            report.entries += walk.count
            damage = (
                []
                if walk.clean
                else _damaged_chain(conn, topic, partition, applied_ids_missing=bool(missing))
            )
            report.findings += walk.findings + damage
            report.findings += walk.mark_findings([f.seq for f in damage if f.seq is not None])
            if report.seals_checked and walk.count and (topic, partition) not in heads:
                report.findings.append(
                    Finding(
                        Tamper.UNSEALED,
                        topic,
                        partition,
                        None,
                        None,
                        None,
                        f"the chain has {walk.count:,} entries but no signed head: its seal was removed",
                    )
                )
            elif walk.count > heads.get((topic, partition), walk.count):
                report.findings.append(appended(conn, topic, partition, heads[topic, partition], walk.count))
        report.findings += _listed(missing, unknown, report.findings)
    report.findings.sort(key=order)
    report.elapsed_s = time.perf_counter() - started
    logger.info(
        "audit_ledger_verified",
        chains=report.chains,
        entries=report.entries,
        findings=len(report.findings),
        duration_ms=round(report.elapsed_s * 1000, 1),
    )
    return report


class _Walk:
    """Folds one chain row by row: chain checks, label checks and checkpoint marks."""

    def __init__(self, topic: str, partition: int, marks: list[Mark], *, deep: bool) -> None:
        self.topic, self.partition, self.deep = topic, partition, deep
        self.marks: dict[int, list[Mark]] = {}
        for mark in marks:
            self.marks.setdefault(mark.count, []).append(mark)
        self.fold = _GENESIS
        self.expected_prev = GENESIS_HASH
        self.count = 0
        self.clean = True
        self.findings: list[Finding] = []
        self.mismatched: list[Mark] = []
        self.matched: list[int] = [0]  # counts at which a mark matched, ascending
        self.boundary: dict[int, tuple[int | None, str]] = {}  # seq -> (offset, event id), seqs at marks

    def step(self, row: Sequence[Any]) -> None:
        # Unpacked once: this runs a million times a verify, attribute access by name costs.
        seq, offset, event_id, prev_hash, entry_hash, stored, record, subject, event_type, recorded_at = row
        data = stored_bytes(stored)
        h = hashlib.sha256(self.fold + hashlib.sha256(data).digest() + _record_bytes(record))
        self.fold = h.digest()
        if self.clean:
            linked = prev_hash == self.expected_prev and seq == self.count
            self.clean = linked and h.hexdigest() == entry_hash
            self.expected_prev = entry_hash
        if self.count == 0 or self.count in self.marks:
            self.boundary[self.count] = (offset, event_id)  # the first entry a broken mark can point to
        self.count += 1
        for mark in self.marks.get(self.count, ()):
            if self.fold.hex() == mark.head_hash:
                if self.matched[-1] != self.count:
                    self.matched.append(self.count)
            else:
                self.mismatched.append(mark)
        labels = {"event_id": event_id, "subject": subject, "type": event_type, "recorded_at": recorded_at}
        problem = _label_problem(data, labels, deep=self.deep)
        if problem is not None:
            kind, detail = problem
            self.findings.append(Finding(kind, self.topic, self.partition, seq, offset, event_id, detail))

    def mark_findings(self, anomaly_seqs: list[int]) -> list[Finding]:
        """Checkpoint marks the chain no longer passes through, unless an earlier finding explains them."""
        out: list[Finding] = []
        broken = [m for m in self.mismatched if not any(seq < m.count for seq in anomaly_seqs)]
        if broken:
            # The first mark the chain misses, and the last one below it that it still passes
            # through: the first changed entry lies between them (the log comparison names it).
            mark = min(broken, key=lambda m: m.count)
            good = max(c for c in self.matched if c < mark.count)
            offset, event_id = self.boundary.get(good, (None, None))
            out.append(
                Finding(
                    Tamper.TAIL_REWRITTEN,
                    self.topic,
                    self.partition,
                    good,
                    offset,
                    event_id,
                    f"rewritten with hashes recomputed: the chain no longer matches the {mark.source} at "
                    f"count {mark.count:,}"
                    + (f" (it still does at count {good:,})" if good else "")
                    + f"; the first changed entry is one of seq {good}..{mark.count - 1}",
                    last_seq=mark.count - 1,
                )
            )
        beyond = [m for count, marks in self.marks.items() if count > self.count for m in marks]
        if beyond:
            mark = max(beyond, key=lambda m: m.count)
            out.append(
                Finding(
                    Tamper.TRUNCATED,
                    self.topic,
                    self.partition,
                    self.count,
                    None,
                    None,
                    f"tail deleted: the {mark.source} counted {mark.count:,} entries; the chain has "
                    f"{self.count:,} (seq {self.count}..{mark.count - 1} are gone)",
                    last_seq=mark.count - 1,
                )
            )
        return out


def snapshot(engine: Engine) -> AbstractContextManager[Connection]:
    """A connection whose reads all see one state of the database, while runners keep appending.

    SQLite: one (deferred) read transaction in WAL mode already is a snapshot. PostgreSQL: the
    default READ COMMITTED would let each query see newer rows, so ask for REPEATABLE READ.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ").connect()
    return engine.connect()


def stored_bytes(value: object) -> bytes:
    """An entry's bytes as stored. SQLite hands back TEXT when text was written into the BLOB column."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _label_problem(data: bytes, labels: dict[str, Any], *, deep: bool) -> tuple[Tamper, str] | None:
    """Do the bytes parse as an event with the row's event_id, subject, type and recorded_at? None if so."""
    if deep:
        try:
            event = EVENT_ADAPTER.validate_json(data)
        except ValueError:
            return Tamper.UNPARSEABLE, "entry bytes are not a valid event"
        if dump_event(event) != data:
            return Tamper.UNPARSEABLE, "entry bytes are an event but not in its canonical encoding"
        fields: dict[str, Any] = {
            "event_id": str(event.event_id),
            "subject": event.subject,
            "type": event.type,
            "recorded_at": event.recorded_at,
        }
    else:
        try:
            fields = json.loads(data.decode("utf-8"))
            fields["recorded_at"] = datetime.fromisoformat(fields["recorded_at"])
        except (ValueError, TypeError, KeyError):  # not UTF-8, not JSON, not an object, no time
            return Tamper.UNPARSEABLE, "entry bytes are not an event (a JSON object with recorded_at)"
    wrong = [name for name, value in labels.items() if fields.get(name) != value]
    if wrong:
        return Tamper.MISLABELLED, f"row column(s) {', '.join(wrong)} differ from the entry's bytes"
    return None


def _damaged_chain(
    conn: Connection, topic: str, partition: int, *, applied_ids_missing: bool
) -> list[Finding]:
    """Read a chain that failed the fast checks into memory (without its bytes) and analyse it."""
    rows = []
    for stored in _stream(conn, topic, partition, light=True):
        data = stored_bytes(stored.entry_bytes)
        content = hashlib.sha256(data).digest() + _record_bytes(stored.record_hash)
        try:
            ok = hashlib.sha256(bytes.fromhex(stored.prev_hash) + content).hexdigest() == stored.entry_hash
        except ValueError:  # a hash column overwritten with something that is not hex
            ok = False
        rows.append(
            ChainRow(
                stored.seq, stored.offset, stored.event_id, stored.prev_hash, stored.entry_hash, content, ok
            )
        )
    out = []
    for anomaly in analyse(rows, applied_ids_missing=applied_ids_missing):
        row = rows[anomaly.index]
        if anomaly.kind is Tamper.DELETED:
            seq = anomaly.missing_from if anomaly.missing_from is not None else row.seq
            detail = f"{anomaly.detail}; the entry after the gap is seq {row.seq}, event {row.event_id}"
            out.append(Finding(anomaly.kind, topic, partition, seq, None, None, detail, anomaly.missing_to))
        else:
            out.append(
                Finding(anomaly.kind, topic, partition, row.seq, row.offset, row.event_id, anomaly.detail)
            )
    return out


def _stream(conn: Connection, topic: str, partition: int, *, light: bool) -> Iterator[Row[Any]]:
    c = entries.c
    columns = [c.seq, c.offset, c.event_id, c.prev_hash, c.entry_hash, c.entry_bytes, c.record_hash]
    if not light:
        columns += [c.subject, c.event_type, c.recorded_at]
    query = select(*columns).where(c.topic == topic, c.partition == partition).order_by(c.seq, c.offset)
    result = conn.execution_options(yield_per=STREAM_BATCH).execute(query)
    yield from result


def _record_bytes(record_hash: str | None) -> bytes:
    """The record hash as it enters the chain (nothing for an entry applied without its record)."""
    if record_hash is None:
        return b""
    try:
        return bytes.fromhex(record_hash)
    except ValueError:  # overwritten with something that is not hex: the entry no longer links
        return str(record_hash).encode("utf-8")


def cut_chains(engine: Engine, key: bytes) -> list[Finding]:
    """Chains shorter than their signed head: a tail deleted with its tracking rows. Cheap (counts only).

    `hub audit verify` asks this before it brings the ledger up to date: re-applying the log
    would otherwise quietly put the deleted entries back.
    """
    c = entries.c
    with snapshot(engine) as conn:
        if not inspect(conn).has_table(entries.name):
            return []
        heads = sealed_heads(conn, key)
        query = select(c.topic, c.partition, func.count()).group_by(c.topic, c.partition)
        counts = {(t, p): int(n) for t, p, n in conn.execute(query)}
    return [
        Finding(
            Tamper.TRUNCATED,
            topic,
            partition,
            counts.get((topic, partition), 0),
            None,
            None,
            f"tail deleted: the ledger's signed head counted {sealed:,} entries; the chain has "
            f"{counts.get((topic, partition), 0):,}",
            last_seq=sealed - 1,
        )
        for (topic, partition), sealed in sorted(heads.items())
        if sealed > counts.get((topic, partition), 0)
    ]


def _tracking_evidence(conn: Connection) -> tuple[list[str], Sequence[Any]]:
    """(ids the ledger applied that no entry holds, entries whose event the ledger never applied)."""
    if not inspect(conn).has_table(projection_applied_events.name):
        return [], []
    a, e = projection_applied_events.c, entries.c
    missing = conn.execute(
        select(a.event_id)
        .where(a.projection == NAME, ~exists().where(e.event_id == a.event_id))
        .order_by(a.event_id)
        .limit(MAX_LISTED + 1)
    ).scalars()
    unknown = conn.execute(
        select(e.topic, e.partition, e.seq, e.offset, e.event_id)
        .where(~exists().where(a.projection == NAME, a.event_id == e.event_id))
        .order_by(e.topic, e.partition, e.seq)
        .limit(MAX_LISTED + 1)
    ).all()
    return list(missing), unknown


def _listed(missing: list[str], unknown: Sequence[Any], found: list[Finding]) -> list[Finding]:
    out = [
        Finding(
            Tamper.DELETED,
            None,
            None,
            None,
            None,
            event_id,
            "the ledger applied this event but no entry holds it",
        )
        for event_id in missing[:MAX_LISTED]
    ]
    if len(missing) > MAX_LISTED:
        out.append(_summary(Tamper.DELETED, f"more than {MAX_LISTED} such events"))
    known = {(f.topic, f.partition, f.seq) for f in found if f.kind is Tamper.INSERTED}
    out += [
        Finding(
            Tamper.INSERTED,
            row.topic,
            row.partition,
            row.seq,
            row.offset,
            row.event_id,
            "no such event was ever applied to the ledger",
        )
        for row in unknown[:MAX_LISTED]
        if (row.topic, row.partition, row.seq) not in known
    ]
    if len(unknown) > MAX_LISTED:
        out.append(_summary(Tamper.INSERTED, f"more than {MAX_LISTED} such entries"))
    return out


def _summary(kind: Tamper, detail: str) -> Finding:
    return Finding(kind, None, None, None, None, None, detail)
