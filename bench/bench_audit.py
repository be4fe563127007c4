"""Audit ledger: apply speed (entries/s) and `verify` speed (entries/s) for 1,000,000 events on SQLite.

The million entries are generated straight through the projection's `apply` in batches of
10,000 (one write transaction each, with the projection_applied_events rows tracking would
write in the same transaction), from events built by copying a template with a new id, subject
and time: building and decoding a million bus records would measure pydantic, not the ledger.
The figure through the full tracking path (`apply_batch`: redelivery and duplicate checks,
decoding each record, then the ledger) is measured separately on 50,000 records. Then `verify`
walks the whole million: every entry's two SHA-256s, the chain links, the JSON label check, the
stored checkpoints (one per 10,000 entries) and the tracking cross-check.

`measure_log_check` is the full `hub audit verify` on LOG_EVENTS events published on an embedded
bus as the hub publishes them: the ledger applied from the bus records (record hashes, signed
seals), then verify with the seal key and the byte-for-byte comparison of every log record.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from hub.bus.embedded import EmbeddedBus
from hub.bus.partitioner import partition_for_key
from hub.ports import BusRecord, event_out_record
from projections.audit.ledger import AuditLedger
from projections.audit.seals import seal_key
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.tracking import apply_batch, ensure_tables, projection_applied_events
from replay.audit.log import check_log
from replay.audit.verify import verify
from replay.reader import LogReader
from schemas.assets import AssetStatus, AssetStatusChanged, StatusChangedPayload
from schemas.catalogue import dump_event
from schemas.envelope import Source
from topics.catalogue import AUDIT_TOPICS, CANONICAL_TOPICS, DERIVED_TOPICS

EVENTS = 1_000_000
LOG_EVENTS = 100_000
TRACKED_EVENTS = 50_000
BATCH = 10_000
SUBJECTS = 50_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TEMPLATE = AssetStatusChanged(
    event_id=uuid.UUID(int=0),
    occurred_at=T0,
    recorded_at=T0,
    source=Source(system="his", site="bench", message_id="bench-esu", adapter_version="bench"),
    subject="AST-000000",
    payload=StatusChangedPayload(status=AssetStatus.IN_USE, status_text="使用中"),
)


def _events(start: int, stop: int) -> list[AssetStatusChanged]:
    return [
        TEMPLATE.model_copy(
            update={
                "event_id": uuid.UUID(int=i),
                "subject": f"AST-{i % SUBJECTS:06d}",
                "recorded_at": T0 + timedelta(seconds=i),
                "occurred_at": T0 + timedelta(seconds=i),
            }
        )
        for i in range(start, stop)
    ]


def fill_direct(url: str, n: int) -> float:
    """Apply `n` events through AuditLedger.apply in batches; return entries/s (generation excluded)."""
    engine = make_engine(url)
    ledger = AuditLedger()
    ensure_tables(engine, ledger)
    spent = 0.0
    try:
        for start in range(0, n, BATCH):
            events = _events(start, min(n, start + BATCH))
            applied = [{"projection": ledger.name, "event_id": str(e.event_id)} for e in events]
            began = time.perf_counter()
            with write_transaction(engine) as conn:
                ledger.apply(conn, events)
                conn.execute(insert(projection_applied_events), applied)
            spent += time.perf_counter() - began
    finally:
        engine.dispose()
    return n / spent


def fill_tracked(url: str, n: int) -> float:
    """Apply `n` bus records through tracking.apply_batch, as the runner does; return entries/s."""
    records = []
    offsets: dict[int, int] = {}
    for event in _events(0, n):
        partition = partition_for_key(event.subject, 6)
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        records.append(
            BusRecord("canonical.asset.v1", partition, offset, event.subject, dump_event(event), (), 0)
        )
    engine = make_engine(url)
    ledger = AuditLedger()
    ensure_tables(engine, ledger)
    try:
        began = time.perf_counter()
        for start in range(0, n, 1000):
            apply_batch(engine, ledger, records[start : start + 1000])
        return n / (time.perf_counter() - began)
    finally:
        engine.dispose()


def measure_verify(url: str) -> tuple[float, float, int]:
    """(entries/s, seconds, entries) of one full verify."""
    engine = make_engine(url)
    try:
        report = verify(engine)
    finally:
        engine.dispose()
    if not report.intact:
        raise RuntimeError(f"bench ledger did not verify: {report.findings[:3]}")
    return report.entries / report.elapsed_s, report.elapsed_s, report.entries


async def measure_log_check(tmp: Path, n: int = LOG_EVENTS) -> dict[str, float]:
    """Seconds of verify (with seals) and of the log comparison over `n` events on an embedded bus."""
    key = seal_key(b"bench")
    bus = EmbeddedBus(tmp / "bus.db")
    await bus.start()
    engine = make_engine(f"sqlite:///{tmp / 'logcheck.db'}")
    ledger = AuditLedger(seal_key=key)
    ensure_tables(engine, ledger)
    try:
        await bus.ensure_topics([*CANONICAL_TOPICS, *DERIVED_TOPICS, *AUDIT_TOPICS])
        for start in range(0, n, BATCH):
            records = [event_out_record(e) for e in _events(start, min(n, start + BATCH))]
            await bus.publish("canonical.asset.v1", records)
        async with LogReader(bus, list(ledger.topics)) as reader:
            async for batch in reader.read(await reader.last_offsets()):
                apply_batch(engine, ledger, batch)
        report = verify(engine, seal_key=key)
        began = time.perf_counter()
        checked = await check_log(engine, bus, seal_key=key)
        log_s = time.perf_counter() - began
    finally:
        engine.dispose()
        await bus.close()
    if not report.intact or checked.findings or checked.records != n:
        raise RuntimeError(f"bench ledger did not verify: {(report.findings + checked.findings)[:3]}")
    return {"verify_s": report.elapsed_s, "log_s": log_s, "seals": report.seals_checked}


async def run(report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        tracked = fill_tracked(f"sqlite:///{Path(tmp) / 'tracked.db'}", TRACKED_EVENTS)
        report.add(
            "audit",
            "ledger apply via apply_batch (decode + tracking), SQLite",
            tracked,
            "entries/s",
            note=f"{TRACKED_EVENTS:,} records, batches of 1,000",
        )
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        rate = fill_direct(url, EVENTS)
        report.add(
            "audit",
            "ledger apply (hash chain + insert), SQLite",
            rate,
            "entries/s",
            note=f"{EVENTS:,} events through AuditLedger.apply, batches of {BATCH:,}",
        )
        speed, seconds, entries = measure_verify(url)
        report.add(
            "audit",
            "verify (chains, labels, checkpoints, tracking), SQLite",
            speed,
            "entries/s",
            aim="1,000,000 in < 20 s",
            note=f"{entries:,} entries in {seconds:.1f} s",
        )
        figures = await measure_log_check(Path(tmp))
        total = figures["verify_s"] + figures["log_s"]
        report.add(
            "audit",
            "verify incl. every log record byte for byte, embedded bus",
            LOG_EVENTS / total,
            "events/s",
            note=(
                f"{LOG_EVENTS:,} events: chains + {figures['seals']:,.0f} seals {figures['verify_s']:.1f} s, "
                f"log {figures['log_s']:.1f} s"
            ),
        )
