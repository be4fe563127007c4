"""The small protocols the rest of the code depends on: event bus, raw archive, clock.

This is the one module of `hub` that adapters, projections and replay may import. Concrete
classes live in hub.bus / hub.archive and are wired in hub.bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from hub.errors import BusError  # re-exported: the error type of the EventBus port
from schemas.catalogue import dump_event

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hub.ingest.channel_counts import ChannelCounts, ChannelMinute, ListenerReport
    from schemas.envelope import EventBase
    from topics.catalogue import TopicSpec

__all__ = [
    "RAW_STATUSES",
    "BusError",
    "BusRecord",
    "Clock",
    "Consumer",
    "EventBus",
    "Headers",
    "InboundMessage",
    "MessageStatus",
    "OutRecord",
    "RawArchive",
    "RawBrowser",
    "RawChannels",
    "RawOutbox",
    "RawQuery",
    "RawRecord",
    "RawStatusBook",
    "RawStore",
    "RawSummary",
    "StoreOutcome",
    "SystemClock",
    "TopicPartition",
    "event_out_record",
]

TopicPartition = tuple[str, int]
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to publish. Partition = murmur2(key) % partitions on both buses, as in Kafka."""

    key: str | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int | None = None


def event_out_record(event: EventBase, value: bytes | None = None) -> OutRecord:
    """How a canonical or derived event goes on a topic: keyed by subject, typed headers.

    The record timestamp is `recorded_at` (when the hub learned the fact), so seeking a topic by
    time answers "what was known at". `value`: the event's `dump_event` bytes when the caller
    has them already (the snapshot differ serialises each event once).
    """
    return OutRecord(
        key=event.subject,
        value=dump_event(event) if value is None else value,
        headers=(
            ("event_type", event.type.encode()),
            ("event_id", str(event.event_id).encode()),
            ("schema_version", str(event.schema_version).encode()),
        ),
        timestamp_ms=int(event.recorded_at.timestamp() * 1000),
    )


class BusRecord(NamedTuple):
    """A record read back from a topic partition.

    A named tuple, not a frozen dataclass: a consumer builds one per record read, and a frozen
    dataclass's `__init__` (one `object.__setattr__` per field) cost about half of what aiokafka
    spends fetching and decoding the record, most of the Kafka path's gap to raw aiokafka.
    Immutable and field-named all the same; compare records with records only (a tuple of the
    same fields compares equal too).
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@runtime_checkable
class Consumer(Protocol):
    """A reader of one or more topics: in a consumer group (`group` set) or manually assigned.

    Offsets are "next offset to read", as in Kafka. `commit()` with no argument commits the
    position after the last record returned by `poll()` for every assigned partition.
    """

    group: str | None

    async def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[BusRecord]: ...
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...
    async def committed(self, tp: TopicPartition) -> int | None: ...
    async def seek(self, tp: TopicPartition, offset: int) -> None: ...
    async def seek_to_beginning(self) -> None: ...
    async def seek_to_timestamp(self, timestamp_ms: int) -> None: ...
    def assignment(self) -> frozenset[TopicPartition]: ...
    async def lag(self) -> dict[TopicPartition, int]: ...
    async def close(self) -> None: ...


@runtime_checkable
class EventBus(Protocol):
    """Append-only, partitioned, offset-addressed log with consumer groups.

    `publish` returns only once every record is durable (embedded: committed with
    synchronous=FULL; Kafka: acks=all) and gives each record's (partition, offset).
    """

    kind: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ensure_topics(self, specs: Sequence[TopicSpec], prefix: str = "") -> list[str]: ...
    async def list_topics(self) -> dict[str, int]: ...
    async def publish(self, topic: str, records: Sequence[OutRecord]) -> list[tuple[int, int]]: ...
    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group: str | None = None,
        from_beginning: bool = True,
        client_id: str | None = None,
    ) -> Consumer: ...
    async def end_offsets(self, topic: str) -> dict[int, int]: ...


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """Bytes as a transport received them, before anything interprets them."""

    system: str
    payload: bytes
    transport: str  # file | http | mllp | cli
    message_id: str  # the source's own id: MSH-10, file name, FHIR id...
    site: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RawRecord:
    """The archived form of an inbound message (the payload is fetched separately)."""

    raw_ref: str
    system: str
    site: str
    message_id: str
    sha256: str
    size: int
    transport: str
    received_at: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    """What `RawArchive.store` did.

    `duplicate`: the same bytes were stored before (an exact resend); `answer` is what the sender
    was told then (e.g. the original HL7 ACK), if it was saved. `conflict_with`: another message
    with the same source key (e.g. MSH-3/4/10) but different bytes is already archived; this one
    is stored too, and the caller must treat it as a conflict.
    """

    record: RawRecord
    duplicate: bool = False
    answer: bytes | None = None
    conflict_with: str | None = None


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """Where one archived message is in processing (see `RawStatusBook`)."""

    raw_ref: str
    status: str
    events: int
    failures: int
    skipped: int
    units: int
    error: str | None
    # Field accounting of the units (FieldAccounting.summary(): rows, cells, claimed, ignored,
    # unclaimed per column); None for sources that do not account yet, or before translation.
    accounting: dict[str, Any] | None = None


RAW_STATUSES = ("pending", "translated", "dead_lettered")


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One message's processing outcome, as the translation worker keeps it (`RawStatusBook`)."""

    raw_ref: str
    status: str
    events: int
    failures: int
    skipped: int
    units: int
    mapping_version: str | None
    error: str | None = None
    accounting: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SourceKey:
    """One message's own key inside a payload and the hash of its normalised content.

    Two messages with the same key and content are the same message (an exact resend, whatever
    the transport or line endings); same key, other content is a conflict.
    """

    key: str
    content: str
    part: int = 1


class RawStore(Protocol):
    """Byte-for-byte store of every inbound message: what transports, the API and replay read.

    `store` returns only once the bytes are durable, or raises `hub.errors.NotStored` (nothing
    may be acknowledged then). An exact resend (same system, same bytes) is not stored twice: the
    first record comes back with `duplicate=True` and the answer saved for it. The same `key`
    (the source's own message key) with other bytes is stored and flagged `conflict_with`.
    Payloads come back as plaintext; at rest they are encrypted when a key is configured.
    `get`, `payload` and `save_answer` raise `hub.errors.ArchiveError` for a reference the archive
    does not hold (`lookup` answers None). A payload over the archive's size limit is NotStored.
    """

    async def store(
        self,
        message: InboundMessage,
        *,
        key: str | None = None,
        keys: Sequence[SourceKey] = (),
        answer: bytes | None = None,
    ) -> StoreOutcome: ...
    async def save_answer(self, raw_ref: str, answer: bytes) -> None: ...
    def note_answer(self, raw_ref: str, answer: bytes) -> None:
        """Keep an answer with the next group commit, not awaited (the hot path's ACK)."""
        ...

    async def reopen(self, raw_ref: str, metadata: dict[str, str]) -> RawRecord:
        """Give a stored record a corrected resend's metadata and queue it for translation again."""
        ...

    async def get(self, raw_ref: str) -> RawRecord: ...
    async def lookup(self, raw_ref: str) -> RawRecord | None: ...
    async def payload(self, raw_ref: str) -> bytes: ...
    def reveal(self, raw_ref: str, stored: bytes) -> bytes:
        """Plaintext of payload bytes as stored (e.g. read back from the raw topic)."""
        ...

    def close(self) -> None: ...


class RawOutbox(Protocol):
    """The archive as the outbox of the raw topics: what the relay has not published yet.

    `unpublished` gives the oldest records first with their payload as stored (None when too
    large to travel inline: readers fetch it with `payload`).
    """

    async def unpublished(self, limit: int = 500) -> list[tuple[RawRecord, bytes | None]]: ...
    async def mark_published(self, refs: Sequence[str]) -> None: ...


class RawStatusBook(Protocol):
    """Processing status per message: received = translated + dead_lettered + pending, per system.

    A message starts `pending`; the translation worker sets `translated` or `dead_lettered` (and
    again after a retry). `refs_with_status` lists messages in arrival order, e.g. to retry them.
    A status for a reference this archive does not hold (a raw record another node archived,
    translated here from the raw topic) is ignored, never an error: it would block the topic.
    """

    async def set_status(
        self,
        raw_ref: str,
        *,
        status: str,
        events: int,
        failures: int,
        skipped: int,
        units: int,
        mapping_version: str | None,
        error: str | None = None,
        accounting: Mapping[str, Any] | None = None,
    ) -> None: ...
    async def set_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        """`set_status` for a batch (the translation worker's), written together."""
        ...

    async def status(self, raw_ref: str) -> MessageStatus | None: ...
    async def reconciliation(self) -> dict[str, dict[str, int]]: ...
    async def refs_with_status(self, status: str, system: str | None = None) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class RawQuery:
    """A message-browser filter over the archive's metadata (every field optional, all must hold).

    `control_id` is the source's own id (MSH-10, file name); `text` a substring of the id or the
    metadata (never the payload: it may be encrypted, and it is patient data); `refs` keeps only
    these references (a department-scoped caller's). Newest first. The total is counted up to
    `count_limit` (a total equal to it means "at least").
    """

    system: str | None = None
    message_type: str | None = None
    status: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    control_id: str | None = None
    text: str | None = None
    refs: Sequence[str] | None = None
    limit: int = 50
    offset: int = 0
    count_limit: int = 100_000


@dataclass(frozen=True, slots=True)
class RawSummary:
    """One archived message as the browser lists it: its record and where processing left it."""

    record: RawRecord
    status: str
    events: int
    failures: int
    error: str | None


class RawBrowser(Protocol):
    """Finding archived messages (GET /messages) and probing the archive (GET /health/ready)."""

    async def browse(self, query: RawQuery) -> tuple[list[RawSummary], int]:
        """One page of matching messages, newest first, and how many match (up to count_limit)."""
        ...

    async def writable(self) -> None:
        """Return once the archive could take a write now; raise (any error) when it could not."""
        ...

    async def answer(self, raw_ref: str) -> bytes | None:
        """What the sender was told for `raw_ref` (e.g. the HL7 ACK), if it was saved."""
        ...


class RawChannels(Protocol):
    """Per-channel (system x transport) counts kept with the archive, and its listeners' reports.

    Counts are written in the same transaction as what they count (hub.ingest.channel_counts), so
    they hold across restarts and across every process sharing the archive.
    """

    async def channel_counts(self) -> list[ChannelCounts]: ...
    async def channel_minutes(self, since: datetime) -> list[ChannelMinute]:
        """Per channel and UTC minute from `since` on: received, translated, dead-lettered."""
        ...

    async def report_listeners(self, reports: Sequence[ListenerReport]) -> None:
        """Keep what a process says about its listeners (upserted by system, transport, node)."""
        ...

    async def channel_listeners(self) -> list[ListenerReport]: ...


class RawArchive(RawStore, RawOutbox, RawStatusBook, RawBrowser, RawChannels, Protocol):
    """The raw archive as the hub uses it: store, outbox and status book (hub.ingest.archive has one)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall clock in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
