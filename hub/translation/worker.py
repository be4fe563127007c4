"""Translation worker: raw topic -> adapter translator -> canonical topics, dead letters.

Per raw message: translate (pure, in a thread, through hub.translation.safe; or take the
translation MLLP/FHIR ingest made to answer the sender, so it is translated once), pass
snapshot types through the differ, publish the events (key = subject), record and publish
dead letters, then write the differ's state and the message's status, and only then commit
the consumer offset. Every step is idempotent (deterministic ids), so a crash anywhere is
repaired by doing it again.

A file of many rows (an adapter with `translate_chunks`: HRP, SPD) goes through the same steps a
chunk of rows at a time - translate, diff, publish, dead-letter, commit the differ's state - so
memory holds one chunk, whatever the file's length; the message's status is written once, after
its last chunk. A crash mid-file leaves the status pending and the offset uncommitted: the file is
translated again, the chunks already published are unchanged for the differ (their state was
committed) or republished under the same ids, and consumers absorb them by event id. A file whose
estimated footprint exceeds the memory budget is refused whole before a row is read: a dead letter
naming the file and the figures, the raw kept in the archive.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import structlog

from adapters.base import AdapterSpec, Failure, FieldAccounting, TranslateContext, Translation
from hub.errors import BusError
from hub.faults import fault_point
from hub.ingest.rawtopic import decode_raw
from hub.memory import release_freed_memory
from hub.ports import StatusUpdate
from hub.translation.corrections import CORRECTABLE, noted_event_ids
from hub.translation.deadletters import DeadLetter, DeadLetterBook, dead_letter_out_record
from hub.translation.safe import run_translator, run_translator_chunks, unit_name, whole_message_failure
from hub.translation.snapshots import DiffResult
from topics.catalogue import dlq_topic, raw_topic, topic_for_event_type

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from hub.ports import BusRecord, EventBus, OutRecord, RawArchive, RawRecord
    from hub.translation.snapshots import SnapshotDiffer
    from schemas.envelope import EventBase

logger = structlog.get_logger()
TRANSLATED_KEPT = 2048
FAILURES_KEPT = 1000  # failures of a chunked file an Outcome lists (all are dead letters)
MB = 1024 * 1024
# Records per publish call: a file's chunk (FileLimits.chunk_rows) goes out in one durable append.
PUBLISH_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class FileLimits:
    """How files are read: rows per chunk, and the memory one file's translation may hold."""

    chunk_rows: int = 2_000
    memory_budget_bytes: int = 256 * MB

    def refusal(self, adapter: AdapterSpec, unit: str, payload: bytes) -> str | None:
        """Why `payload` is refused before it is read, or None when it fits the budget."""
        if adapter.footprint is None:
            return None
        need = adapter.footprint(payload)
        if need <= self.memory_budget_bytes:
            return None
        return (
            f"{unit}: refused before reading: translating it would hold about {need / MB:,.0f} MB, more than "
            f"the memory budget of {self.memory_budget_bytes / MB:,.0f} MB (HUB_FILE_MEMORY_BUDGET_MB); "
            f"the file is {len(payload) / MB:,.1f} MB. Split the export, save it as CSV, or raise the "
            f"budget, then `hub dlq retry`"
        )


Progress = Callable[[str, int], None]  # (raw_ref, rows translated so far) after each chunk


@dataclass(frozen=True, slots=True)
class _Done:
    """One message translated (and diffed), its results not kept yet."""

    record: RawRecord
    ctx: TranslateContext
    translation: Translation
    diff: DiffResult
    letters: list[DeadLetter]
    started: float
    mapping: Any = None  # the mapping it was translated with (its `unclaimed` rule)

    @property
    def status(self) -> str:
        return "dead_lettered" if self.translation.failures else "translated"


@dataclass(frozen=True, slots=True)
class _File:
    """A file to translate chunk by chunk: kept as it goes, not with the batch's other messages."""

    record: RawRecord
    payload: bytes
    mapping: Any
    ctx: TranslateContext
    started: float


@dataclass(frozen=True, slots=True)
class Outcome:
    raw_ref: str
    status: str
    events: int
    failures: tuple[Failure, ...]  # a chunked file's first FAILURES_KEPT only; `failed` counts all
    skipped: int
    units: int
    unchanged: int = 0
    corrected: int = 0
    failed: int = -1
    chunks: int = 1

    def __post_init__(self) -> None:
        if self.failed < 0:
            object.__setattr__(self, "failed", len(self.failures))


class MappingSource:
    """The adapter's mapping: the hospital's override file if present, else the bundled default.

    Reloaded when the file changes, or appears, so a fixed mapping applies to the next message
    and to `hub dlq retry` / `POST /dlq/retry` without a restart. A broken override is
    reported, never silently replaced.
    """

    def __init__(
        self, adapter: AdapterSpec, override_dir: Path | None, *, secret: bytes | None = None
    ) -> None:
        self._adapter = adapter
        self._secret = secret
        self._override = override_dir / f"{adapter.system.value}.yaml" if override_dir else None
        self.path = self._choose()
        self._mtime = -1.0
        self._next_check = 0.0
        self._mapping: Any = None

    def current(self) -> Any:
        now = time.monotonic()
        if self._mapping is not None and now < self._next_check:
            return self._mapping  # hot paths (MLLP) ask per message: look at the file once a second
        self._next_check = now + 1.0
        path = self._choose()
        mtime = path.stat().st_mtime
        if path != self.path or mtime != self._mtime:
            self.path = path
            self._mapping = prepare_mapping(self._adapter.load_mapping(self.path), self._secret)
            self._mtime = mtime
        return self._mapping

    def _choose(self) -> Path:
        if self._override is not None and self._override.exists():
            return self._override
        return self._adapter.default_mapping


def prepare_mapping(mapping: Any, secret: bytes | None) -> Any:
    """Give a mapping that pseudonymises patients (HIS) the hub's key; others are returned as they are."""
    if secret is not None and isinstance(mapping, SecretAware):
        return mapping.with_secret(secret)
    return mapping


@runtime_checkable
class SecretAware(Protocol):
    def with_secret(self, secret: bytes) -> Any: ...


class TranslationWorker:
    def __init__(
        self,
        *,
        adapter: AdapterSpec,
        mappings: MappingSource,
        bus: EventBus,
        archive: RawArchive,
        dead_letters: DeadLetterBook,
        differ: SnapshotDiffer,
        site: str,
        tz: ZoneInfo,
        prefix: str = "",
        files: FileLimits | None = None,
    ) -> None:
        self.adapter = adapter
        self.files = files or FileLimits()
        self.progress: Progress | None = None  # told after each chunk of a file (hub ingest's bar)
        self.system = adapter.system.value
        # hub.metrics: told each message's translation time (set by the composition root)
        self.observe_translate: Callable[[str, float], None] | None = None
        self.mappings = mappings
        self._bus = bus
        self._archive = archive
        self._dead = dead_letters
        self._differ = differ
        self._site = site
        self._tz = tz
        self._prefix = prefix
        self._consumer: Any = None
        # Translate once: what an ingest path translated to answer its sender (MLLP, FHIR), by
        # raw ref, so processing the record from the raw topic publishes it without translating
        # again. Bounded: an entry not used in time is dropped and the record translated afresh
        # (same ids, same events), as after a restart.
        self._translated: OrderedDict[str, tuple[str, dict[str, str], Translation]] = OrderedDict()
        self.reused = 0  # translations taken from an ingest path, for the logs and tests

    def remember(self, record: RawRecord, mapping_version: str, translation: Translation) -> None:
        """Hand over a translation computed at answer time for `record` with that mapping version."""
        self._translated[record.raw_ref] = (mapping_version, dict(record.metadata), translation)
        self._translated.move_to_end(record.raw_ref)
        while len(self._translated) > TRANSLATED_KEPT:
            self._translated.popitem(last=False)

    def _already_translated(self, record: RawRecord, mapping_version: str) -> Translation | None:
        entry = self._translated.pop(record.raw_ref, None)
        if entry is None or entry[0] != mapping_version or entry[1] != dict(record.metadata):
            return None  # another mapping, or the record was reopened with other metadata since
        self.reused += 1
        return entry[2]

    # -- one message, or a batch read from the raw topic
    async def process(self, record: RawRecord, payload: bytes | None = None) -> Outcome:
        return (await self.process_batch([(record, payload)]))[0]

    async def process_batch(self, items: Sequence[tuple[RawRecord, bytes | None]]) -> list[Outcome]:
        """Translate each message, then keep the batch's results together, in the order that
        makes a crash anywhere harmless: events and dead letters published, dead letters
        recorded, differ state, then every message's status (one archive commit for the batch).

        A message whose diff carries snapshot state ends its group there: the next message's
        diff must see that state, and state is written only after its events are on the bus.
        """
        outcomes: list[Outcome] = []
        group: list[_Done] = []
        for record, payload in items:
            done = await self._translate(record, payload)
            if isinstance(done, _File):
                # Publishes as it goes: what came before it in the batch goes out first.
                if group:
                    outcomes += await self._keep(group)
                    group = []
                outcomes.append(
                    await self._process_chunks(
                        done.record, done.payload, done.mapping, done.ctx, done.started
                    )
                )
                # The file's bytes and its chunks' pages go back to the system now, not at the
                # next file (the heap otherwise keeps its high-water mark as RSS).
                del done
                await asyncio.to_thread(release_freed_memory)
                continue
            group.append(done)
            if done.diff.state or done.diff.noted:
                outcomes += await self._keep(group)
                group = []
        if group:
            outcomes += await self._keep(group)
        return outcomes

    async def _translate(self, record: RawRecord, payload: bytes | None) -> _Done | _File:
        started = time.perf_counter()
        payload = (
            await self._archive.payload(record.raw_ref)
            if payload is None
            else self._archive.reveal(record.raw_ref, payload)
        )
        mapping = self.mappings.current()
        ctx = TranslateContext(
            site=record.site or self._site,
            tz=self._tz,
            adapter_version=self.adapter.version,
            mapping_version=mapping.version,
        )
        if rejected := record.metadata.get("rejected"):
            # Refused at the edge (e.g. strict HL7 validation) and answered so: never translated.
            translation = whole_message_failure(
                unit_name(record),
                rejected,
                record.metadata.get("rejected_code", "rejected"),
            )
        elif conflict := record.metadata.get("conflict_with"):
            translation = whole_message_failure(
                unit_name(record),
                f"message id {record.message_id!r} was already received with different content"
                f" (archived as {conflict}); this one is kept but not translated",
                "conflict",
            )
        elif (known := self._already_translated(record, ctx.mapping_version)) is not None:
            translation = known
        elif (refused := self.files.refusal(self.adapter, unit_name(record), payload)) is not None:
            logger.warning("file_refused", system=self.system, raw_ref=record.raw_ref, reason=refused)
            translation = whole_message_failure(unit_name(record), refused, "over_budget")
        elif self.adapter.translate_chunks is not None:
            return _File(record, payload, mapping, ctx, started)
        else:
            translation = await asyncio.to_thread(run_translator, self.adapter, record, payload, mapping, ctx)
        if translation.failures and self.adapter.atomic is not None and self.adapter.atomic(payload):
            translation = replace(translation, events=())
        events = [e.event for e in translation.events]
        snapshots = self.adapter.snapshot_types
        if any(e.type in snapshots for e in events):
            diff = await self._differ.diff(self.system, events, snapshots)
        else:
            diff = DiffResult(events=events)  # nothing to compare: no thread hop, no read
        if any(e.type in CORRECTABLE for e in events):
            # Noted units remembered; one a retry now reads otherwise goes out as its correction.
            diff = self._differ.correct(
                self.system, diff, noted_event_ids(translation.events, translation.notes)
            )
        # Notes (units kept with a field unknown) are dead letters too, for the integrator to fix.
        letters = [self.dead_letter(record, f, ctx) for f in translation.failures]
        letters += [self.dead_letter(record, f, ctx, kind="note") for f in translation.notes]
        return _Done(record, ctx, translation, diff, letters, started, mapping)

    async def _keep(self, group: list[_Done]) -> list[Outcome]:
        await self._publish([pair for d in group for pair in d.diff.out_records()])
        letters = [letter for d in group for letter in d.letters]
        if letters:
            await self._dead.record(letters)
            await self._bus.publish(
                dlq_topic(self.system).full_name(self._prefix), [dead_letter_out_record(d) for d in letters]
            )
        # One call for the batch: a thread hop per message cost more than the lookups themselves.
        await self._dead.resolve_others_many(
            [
                (d.record.raw_ref, [f.position for f in (*d.translation.failures, *d.translation.notes)])
                for d in group
            ]
        )
        for d in group:
            await self._differ.commit(d.diff)
        # One write for the batch, riding on the archive's next group commit.
        await self._archive.set_statuses([self._status_of(d) for d in group])
        return [self._outcome(d) for d in group]

    def _status_of(self, d: _Done) -> StatusUpdate:
        translation = d.translation
        whole = next((f.reason for f in translation.failures if f.position == "message"), None)
        return StatusUpdate(
            d.record.raw_ref,
            status=d.status,
            events=len(d.diff.events),
            failures=len(translation.failures),
            skipped=len(translation.skipped),
            units=translation.units,
            mapping_version=d.ctx.mapping_version,
            error=whole,
            accounting=self._account(d.record, d.mapping, translation.accounting),
        )

    def _outcome(self, d: _Done) -> Outcome:
        translation, diff = d.translation, d.diff
        logger.info(
            "message_translated",
            system=self.system,
            raw_ref=d.record.raw_ref,
            message_id=d.record.message_id,
            outcome=d.status,
            events=len(diff.events),
            failures=len(translation.failures),
            unchanged=diff.unchanged,
            corrected=diff.corrected,
            duration_ms=round((time.perf_counter() - d.started) * 1000, 1),
        )
        if self.observe_translate is not None:
            self.observe_translate(self.system, time.perf_counter() - d.started)
        return Outcome(
            d.record.raw_ref,
            d.status,
            len(diff.events),
            translation.failures,
            len(translation.skipped),
            translation.units,
            diff.unchanged,
            diff.corrected,
        )

    async def _process_chunks(
        self, record: RawRecord, payload: bytes, mapping: Any, ctx: TranslateContext, started: float
    ) -> Outcome:
        """One file, chunk by chunk: each chunk diffed, published and its dead letters recorded,
        the differ's state committed after it is on the bus; the status once, after the last."""
        chunks = run_translator_chunks(
            self.adapter, record, payload, mapping, ctx, chunk_rows=self.files.chunk_rows
        )
        events = units = skipped = unchanged = corrected = failed = count = 0
        accounting: FieldAccounting | None = None
        kept: list[Failure] = []
        positions: list[str] = []  # of every failure, to resolve the dead letters that no longer fail
        whole: str | None = None
        while True:
            # Not `while (chunk := ...)`: the previous chunk (its events, their wire records, the
            # diff) would stay referenced while the next one is translated, two chunks at once.
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                break
            count += 1
            if count > 1:
                fault_point("translation.between_chunks")
            diff = await self._differ.diff(
                self.system, [e.event for e in chunk.events], self.adapter.snapshot_types
            )
            diff = self._differ.correct(self.system, diff, noted_event_ids(chunk.events, chunk.notes))
            await self._publish(diff.out_records())
            if chunk.failures or chunk.notes:
                letters = [self.dead_letter(record, f, ctx) for f in chunk.failures]
                letters += [self.dead_letter(record, f, ctx, kind="note") for f in chunk.notes]
                await self._dead.record(letters)
                dlq = dlq_topic(self.system).full_name(self._prefix)
                await self._bus.publish(dlq, [dead_letter_out_record(d) for d in letters])
                del letters
                positions += [f.position for f in (*chunk.failures, *chunk.notes)]
                kept += chunk.failures[: max(0, FAILURES_KEPT - len(kept))]
                whole = whole or next((f.reason for f in chunk.failures if f.position == "message"), None)
            await self._differ.commit(diff)
            events += len(diff.events)
            units += chunk.units
            if chunk.accounting is not None:
                accounting = chunk.accounting if accounting is None else accounting.merged(chunk.accounting)
            skipped += len(chunk.skipped)
            failed += len(chunk.failures)
            unchanged += diff.unchanged
            corrected += diff.corrected
            if self.progress is not None:
                self.progress(record.raw_ref, units)
            del chunk, diff
        await self._dead.resolve_others(record.raw_ref, positions)
        status = "dead_lettered" if failed else "translated"
        await self._archive.set_status(
            record.raw_ref,
            status=status,
            events=events,
            failures=failed,
            skipped=skipped,
            units=units,
            mapping_version=ctx.mapping_version,
            error=whole,
            accounting=self._account(record, mapping, accounting),
        )
        logger.info(
            "message_translated",
            system=self.system,
            raw_ref=record.raw_ref,
            message_id=record.message_id,
            outcome=status,
            events=events,
            failures=failed,
            unchanged=unchanged,
            corrected=corrected,
            chunks=count,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if self.observe_translate is not None:
            self.observe_translate(self.system, time.perf_counter() - started)
        return Outcome(
            record.raw_ref, status, events, tuple(kept), skipped, units, unchanged, corrected, failed, count
        )

    def _account(
        self, record: RawRecord, mapping: Any, accounting: FieldAccounting | None
    ) -> dict[str, object] | None:
        """The stored form of a message's field accounting; unclaimed columns logged unless the
        mapping says `unclaimed: ignore` (a vendor's new column shows up here first)."""
        if accounting is None:
            return None
        if accounting.unclaimed and getattr(mapping, "unclaimed", "warn") == "warn":
            logger.warning(
                "fields_unclaimed",
                system=self.system,
                raw_ref=record.raw_ref,
                columns=dict(sorted(accounting.unclaimed.items())),
                cells=accounting.unclaimed_cells,
                of_cells=accounting.cells,
            )
        return accounting.summary()

    def dead_letter(
        self,
        record: RawRecord,
        failure: Failure,
        ctx: TranslateContext,
        *,
        kind: Literal["failure", "note"] = "failure",
    ) -> DeadLetter:
        return DeadLetter.for_failure(
            failure,
            raw_ref=record.raw_ref,
            system=self.system,
            message_id=record.message_id,
            adapter_version=ctx.adapter_version,
            mapping_version=ctx.mapping_version,
            failed_at=datetime.now(UTC),
            kind=kind,
        )

    async def _publish(self, pairs: list[tuple[EventBase, OutRecord]]) -> None:
        by_topic: dict[str, list[OutRecord]] = defaultdict(list)
        topics: dict[str, str] = {}  # event type -> topic name, looked up once per batch
        for event, record in pairs:
            topic = topics.get(event.type)
            if topic is None:
                topic = topics[event.type] = topic_for_event_type(event.type).full_name(self._prefix)
            by_topic[topic].append(record)
        for topic, records in by_topic.items():
            for i in range(0, len(records), PUBLISH_BATCH):
                await self._bus.publish(topic, records[i : i + PUBLISH_BATCH])

    # -- the raw topic
    async def _ensure_consumer(self) -> Any:
        if self._consumer is None:
            self._consumer = await self._bus.consumer(
                [raw_topic(self.system).full_name(self._prefix)],
                group=f"adapter.{self.system}",
                client_id=f"hub-adapter-{self.system}",
            )
        return self._consumer

    async def _handle(self, records: list[BusRecord]) -> int:
        await self.process_batch([decode_raw(rec.value) for rec in records])
        return len(records)

    async def _commit(self, consumer: Any) -> None:
        fault_point("translation.before_commit")
        try:
            await consumer.commit()
        except BusError as exc:
            # The partition moved to another member after a rebalance: it re-reads from the last
            # commit and re-translates, which publishes the same event ids (absorbed downstream).
            logger.warning("commit_rejected", system=self.system, error=str(exc))

    async def run_until_idle(self, timeout_s: float = 0.2, *, idle_when_caught_up: bool = False) -> int:
        """Translate until a poll comes back empty; how many records were handled.

        `idle_when_caught_up`: an empty poll with no lag counts as idle at once instead of waiting
        `timeout_s` for records (the embedded log: what was published is readable already).
        """
        consumer = await self._ensure_consumer()
        total = 0
        while True:
            records = await consumer.poll(max_records=50, timeout_s=0.0 if idle_when_caught_up else timeout_s)
            if not records and idle_when_caught_up and sum((await consumer.lag()).values()) > 0:
                records = await consumer.poll(max_records=50, timeout_s=timeout_s)
            if not records:
                return total
            total += await self._handle(records)
            await self._commit(consumer)

    async def run_forever(self, stop: asyncio.Event) -> None:
        consumer = await self._ensure_consumer()
        while not stop.is_set():
            records = await consumer.poll(max_records=50, timeout_s=0.5)
            if records:
                await self._handle(records)
                await self._commit(consumer)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
