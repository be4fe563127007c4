"""History with provenance: every event about one subject, oldest first, traced to its raw message.

Read from the log, not from a read model, so it works for any subject and shows every fact
including those a read model folds away. Subjects:
- `asset ID`: events keyed by the asset; events keyed by the provisional ids minted from the
  identifiers linked to it (`schemas.ids.asset_id_for`: an OA loan naming the OA number before
  the link arrived); the work orders whose request names the asset or one of its identifiers,
  with all their events.
- `item ID`, `workorder ID`: events keyed by that id.
- `udi CODE`: every event whose payload holds that exact code anywhere (identifiers, device
  details, barcodes, consumption records).
With `include_derived`, the hub's own conclusions about the subject (compliance due, SLA
breached...) are listed too; they have no raw message.

Each entry carries its source system, source message id and raw reference (`source.raw_ref`),
and, when a raw lookup is given (the raw archive), the archived record's sha256 and receive
time, so a figure goes to the exact bytes the vendor system sent (GET /raw/{ref}).

With a `ledger` (replay.audit.match.LedgerMatcher), every entry's log record is checked against
its audit ledger entry, and an entry whose record no longer matches carries `tampered` (what
differs) instead of being shown as if it were fact.

Only the partitions the subject's key hashes to are read where the key is known. `since` skips
the log before that time with the bus's seek by timestamp (a lower bound on recorded_at: every
record before the seek point is older), then filters on the event's own recorded_at.
Identity (which identifiers, which work orders) is always worked out from offset 0.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from projections.runtime.decode import Poison, decode
from replay.reader import LogReader
from replay.summary import summarise
from schemas._base import Identifier
from schemas.ids import asset_id_for
from topics.catalogue import CANONICAL_TOPICS, DERIVED_TOPICS
from topics.partitioning import partition_for_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
    from datetime import datetime

    from hub.ports import BusRecord, EventBus, RawRecord, TopicPartition
    from replay.audit.match import LedgerMatcher
    from schemas.catalogue import Event

ASSET_TOPIC = "canonical.asset.v1"
WORKORDER_TOPIC = "canonical.workorder.v1"
INVENTORY_TOPIC = "canonical.inventory.v1"
_DERIVED_REFERENCES = ("asset_id", "asset_ids", "item_id", "workorder_id")


class SubjectKind(StrEnum):
    ASSET = "asset"
    ITEM = "item"
    WORKORDER = "workorder"
    UDI = "udi"


@dataclass(frozen=True, slots=True)
class RawInfo:
    """The archived raw message an event came from."""

    sha256: str
    size: int
    received_at: datetime
    transport: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of a subject's history, with where it came from."""

    occurred_at: datetime
    recorded_at: datetime
    event_type: str
    event_id: str
    subject: str
    source_system: str
    source_site: str
    message_id: str
    raw_ref: str | None
    adapter_version: str
    summary: str
    topic: str
    partition: int
    offset: int
    raw: RawInfo | None = None
    tampered: str | None = None  # the log record no longer matches its audit ledger entry: how

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("occurred_at", "recorded_at"):
            out[key] = out[key].isoformat()
        if self.raw is not None:
            out["raw"]["received_at"] = self.raw.received_at.isoformat()
        return out


async def history(
    bus: EventBus,
    kind: SubjectKind,
    subject_id: str,
    *,
    prefix: str = "",
    since: datetime | None = None,
    include_derived: bool = False,
    raw_lookup: Callable[[str], Awaitable[RawRecord | None]] | None = None,
    ledger: LedgerMatcher | None = None,
) -> list[HistoryEntry]:
    """The subject's events, oldest first (business time, then recorded time, then log position)."""
    scanner = _Scanner(bus, prefix, since)
    if kind is SubjectKind.ASSET:
        found = await _asset(scanner, subject_id, include_derived=include_derived)
    elif kind is SubjectKind.UDI:
        found = await _udi(scanner, subject_id, include_derived=include_derived)
    else:
        topic = INVENTORY_TOPIC if kind is SubjectKind.ITEM else WORKORDER_TOPIC
        found = await scanner.scan([topic], keys={subject_id}, match=_keyed({subject_id}))
        if include_derived:
            found += await scanner.scan(_derived_topics(), match=_names_in_derived({subject_id}))
    unique = {(r.topic, r.partition, r.offset): (r, e) for r, e in found}
    ordered = sorted(unique.values(), key=lambda p: (p[1].occurred_at, p[1].recorded_at, _position(p[0])))
    entries = [_entry(record, event) for record, event in ordered]
    if ledger is not None and ordered:
        findings = await asyncio.to_thread(ledger.check, [record for record, _ in ordered])
        flags = {
            (f"{prefix}{f.topic}", f.partition, f.offset): f"{f.kind.value}: {f.detail}" for f in findings
        }
        entries = [replace(e, tampered=flags.get((e.topic, e.partition, e.offset))) for e in entries]
    if raw_lookup is not None:
        entries = await _with_raw(entries, raw_lookup)
    return entries


class _Scanner:
    def __init__(self, bus: EventBus, prefix: str, since: datetime | None) -> None:
        self.bus = bus
        self.prefix = prefix
        self.since = since

    async def scan(
        self,
        topics: Iterable[str],
        *,
        match: Callable[[BusRecord], Event | None],
        keys: Collection[str] | None = None,
        from_start: bool = False,
    ) -> list[tuple[BusRecord, Event]]:
        """Records of `topics` (only the partitions of `keys`, if given) that `match` accepts."""
        found: list[tuple[BusRecord, Event]] = []
        async with LogReader(self.bus, [f"{self.prefix}{t}" for t in topics]) as reader:
            last = await reader.last_offsets()
            partitions = _partitions_of(last, keys)
            batches: AsyncIterator[list[BusRecord]]
            if self.since is None or from_start:
                batches = reader.read({tp: last[tp] for tp in partitions}, settle=True)
            else:
                batches = reader.read_from_time(int(self.since.timestamp() * 1000), partitions)
            async for batch in batches:
                for record in batch:
                    event = match(record)
                    if event is not None and (
                        from_start or self.since is None or event.recorded_at >= self.since
                    ):
                        found.append((record, event))
        return found

    def _recent(self, event: Event) -> bool:
        return self.since is None or event.recorded_at >= self.since


async def _asset(scanner: _Scanner, asset_id: str, *, include_derived: bool) -> list[tuple[BusRecord, Event]]:
    own = await scanner.scan([ASSET_TOPIC], keys={asset_id}, match=_keyed({asset_id}), from_start=True)
    identifiers = {i for _, event in own for i in _identifiers(event)}
    subjects = {asset_id} | {asset_id_for(i) for i in identifiers}
    named = {(i.scheme, i.value) for i in identifiers}

    def requests_for_asset(record: BusRecord) -> Event | None:
        kind = record.header("event_type")
        if kind is not None and kind != b"workorder.requested":
            return None
        event = _event(record)
        if event is None or event.type != "workorder.requested":
            return None
        asset: Identifier = event.payload.asset
        named_here = (asset.scheme, asset.value) in named or asset_id_for(asset) in subjects
        return event if named_here else None

    found = await scanner.scan([ASSET_TOPIC], keys=subjects, match=_keyed(subjects))
    requests = await scanner.scan([WORKORDER_TOPIC], match=requests_for_asset, from_start=True)
    orders = {event.subject for _, event in requests}
    if orders:
        found += await scanner.scan([WORKORDER_TOPIC], keys=orders, match=_keyed(orders))
    if include_derived:
        found += await scanner.scan(_derived_topics(), match=_names_in_derived(subjects | orders))
    return found


async def _udi(scanner: _Scanner, code: str, *, include_derived: bool) -> list[tuple[BusRecord, Event]]:
    needle = json.dumps(code, ensure_ascii=False)[1:-1].encode()

    def names_code(record: BusRecord) -> Event | None:
        if needle not in record.value:  # cheap: most records never mention the code
            return None
        event = _event(record)
        if event is None or not _holds(event.payload.model_dump(mode="json"), code):
            return None
        return event

    topics = [t.name for t in CANONICAL_TOPICS] + (_derived_topics() if include_derived else [])
    return await scanner.scan(topics, match=names_code)


def _keyed(keys: Collection[str]) -> Callable[[BusRecord], Event | None]:
    def match(record: BusRecord) -> Event | None:
        return _event(record) if record.key in keys else None

    return match


def _names_in_derived(ids: Collection[str]) -> Callable[[BusRecord], Event | None]:
    def match(record: BusRecord) -> Event | None:
        event = _event(record)
        if event is None:
            return None
        if event.subject in ids:
            return event
        if event.type.startswith("notification.") and event.correlation_id in ids:
            return event  # a notification about the subject: sent, escalated, delivered, read
        for name in _DERIVED_REFERENCES:
            value = getattr(event.payload, name, None)
            values = value if isinstance(value, list) else [value]
            if any(v in ids for v in values):
                return event
        return None

    return match


def _event(record: BusRecord) -> Event | None:
    result = decode(record)
    return None if isinstance(result, Poison) else result


def _identifiers(event: Event) -> list[Identifier]:
    """Identifiers an asset event gives its subject: registered ones, linked ones, its UDI."""
    payload: Any = event.payload
    found: list[Identifier] = list(getattr(payload, "identifiers", []) or [])
    linked = getattr(payload, "identifier", None)
    if isinstance(linked, Identifier):
        found.append(linked)
    details = getattr(payload, "details", None)
    udi = getattr(details, "udi", None)
    if udi:
        found.append(Identifier(scheme="udi", value=udi))
    return found


def _holds(data: Any, code: str) -> bool:
    if isinstance(data, str):
        return data == code
    if isinstance(data, dict):
        return any(_holds(v, code) for v in data.values())
    if isinstance(data, list):
        return any(_holds(v, code) for v in data)
    return False


def _partitions_of(last: dict[TopicPartition, int], keys: Collection[str] | None) -> list[TopicPartition]:
    if keys is None:
        return sorted(last)
    counts: dict[str, int] = {}
    for topic, _ in last:
        counts[topic] = counts.get(topic, 0) + 1
    wanted = {(topic, partition_for_key(k, n)) for topic, n in counts.items() for k in keys}
    return sorted(tp for tp in last if tp in wanted)


def _derived_topics() -> list[str]:
    # Read receipts are people's statements (canonical), but they belong with the notifications.
    return [t.name for t in DERIVED_TOPICS] + ["canonical.notification.v1"]


def _position(record: BusRecord) -> tuple[str, int, int]:
    return record.topic, record.partition, record.offset


def _entry(record: BusRecord, event: Event) -> HistoryEntry:
    return HistoryEntry(
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        event_type=event.type,
        event_id=str(event.event_id),
        subject=event.subject,
        source_system=event.source.system.value,
        source_site=event.source.site,
        message_id=event.source.message_id,
        raw_ref=event.source.raw_ref,
        adapter_version=event.source.adapter_version,
        summary=summarise(event),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


async def _with_raw(
    entries: list[HistoryEntry], lookup: Callable[[str], Awaitable[RawRecord | None]]
) -> list[HistoryEntry]:
    found: dict[str, RawInfo | None] = {}
    for ref in {e.raw_ref for e in entries if e.raw_ref}:
        record = await lookup(ref)
        found[ref] = (
            None
            if record is None
            else RawInfo(record.sha256, record.size, record.received_at, record.transport)
        )
    return [replace(e, raw=found.get(e.raw_ref)) if e.raw_ref else e for e in entries]
