"""What the HTTP API works with: one typed bundle, built by the composition root (hub.bootstrap).

Every field is always present: the API runs inside a hub that has its bus, archive, read-model
database and key store, so no route needs a "service missing" answer. Routes receive these
through the `Annotated` dependencies of hub.api.deps, never by looking at the app's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from hub.api.state import ApiMetrics, LagSource
from hub.delivery.webhooks.targets import TargetPolicy
from hub.errors import ArchiveError
from hub.ports import Clock, event_out_record
from replay.as_of import asset_as_of
from replay.audit.match import LedgerMatcher
from replay.history import HistoryEntry, SubjectKind, history
from topics.catalogue import topic_for_event_type

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.api.browser import MessageBrowser
    from hub.api.readiness import Listeners, ReadinessSource
    from hub.api.security import Security
    from hub.bootstrap import Hub
    from hub.delivery.webhooks import SubscriptionStore
    from hub.ingest.http_edge import Ingestor
    from hub.metrics import ChannelSource, OpsSource, ProcessMetrics
    from hub.ports import EventBus, MessageStatus, RawArchive, RawRecord
    from hub.translation.retry import HubDeadLetters
    from projections.runtime.base import Projection
    from schemas.envelope import EventBase

Publisher = Callable[["EventBase"], Awaitable[None]]
AsOfReader = Callable[[str, datetime, datetime], Awaitable[dict[str, Any] | None]]
HistoryReader = Callable[[SubjectKind, str, datetime | None, bool], Awaitable[list[HistoryEntry]]]


class RawReader(Protocol):
    """What /raw reads: a record's metadata, and (separately, only when allowed) its bytes."""

    async def record(self, raw_ref: str) -> RawRecord:
        """The archived record; raises LookupError for an unknown reference."""
        ...

    async def payload(self, raw_ref: str) -> bytes:
        """The plaintext payload (decrypted if stored encrypted)."""
        ...


class ArchiveRawReader:
    """A RawReader over a RawArchive: an unknown reference raises LookupError (answered 404)."""

    def __init__(self, archive: RawArchive) -> None:
        self._archive = archive

    async def record(self, raw_ref: str) -> RawRecord:
        try:
            return await self._archive.get(raw_ref)
        except ArchiveError as exc:  # the archive's "no such raw message"
            raise LookupError(raw_ref) from exc

    async def payload(self, raw_ref: str) -> bytes:
        return await self._archive.payload(raw_ref)

    async def status(self, raw_ref: str) -> MessageStatus | None:
        """The message's translation status (with its field accounting), for HEAD /raw."""
        return await self._archive.status(raw_ref)


@dataclass(frozen=True)
class ApiServices:
    """Everything the routes use, for one hub (see the module docstring)."""

    engine: Engine
    security: Security
    clock: Clock
    bus: EventBus
    topic_prefix: str
    site: str
    zone: tzinfo
    projections: Sequence[Projection]
    runners_lag: LagSource
    ingest: Ingestor
    raw: RawReader
    publish: Publisher
    as_of: AsOfReader
    history: HistoryReader
    dead_letters: HubDeadLetters
    subscriptions: SubscriptionStore
    messages: MessageBrowser
    webhook_targets: TargetPolicy = field(default_factory=TargetPolicy)
    readiness: ReadinessSource | None = None  # GET /health/ready; None: the database check alone
    # Listeners `hub serve` opened (name -> serving?), registered as they start: /health/ready reports them.
    listeners: Listeners = field(default_factory=dict)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    # GET /channels and the durable part of /metrics (hub.ops); the process's own latencies.
    channels: ChannelSource | None = None
    ops: OpsSource | None = None
    process_metrics: ProcessMetrics | None = None
    # Set when the server is stopping: open event streams end at their next poll, so clients
    # reconnect (elsewhere, or later) from their last id instead of being cut off mid-response.
    draining: asyncio.Event = field(default_factory=asyncio.Event)


def publisher(hub: Hub) -> Publisher:
    """Publishes one event to its catalogue topic (POST /assets/{id}/identifiers)."""
    prefix = hub.settings.topic_prefix

    async def publish(event: EventBase) -> None:
        await hub.bus.publish(topic_for_event_type(event.type).full_name(prefix), [event_out_record(event)])

    return publish


def as_of_reader(hub: Hub) -> AsOfReader:
    prefix = hub.settings.topic_prefix

    async def as_of(asset_id: str, occurred_at: datetime, known_at: datetime) -> dict[str, Any] | None:
        # Refuses (replay.errors.RecordTampered) a log record that no longer matches its ledger entry.
        return await asset_as_of(
            hub.bus,
            asset_id,
            occurred_at=occurred_at,
            known_at=known_at,
            prefix=prefix,
            ledger=LedgerMatcher(hub.engine, prefix=prefix),
        )

    return as_of


def history_reader(hub: Hub) -> HistoryReader:
    prefix = hub.settings.topic_prefix

    async def history_of(
        kind: SubjectKind, subject_id: str, since: datetime | None, derived: bool
    ) -> list[HistoryEntry]:
        return await history(
            hub.bus,
            kind,
            subject_id,
            prefix=prefix,
            since=since,
            include_derived=derived,
            raw_lookup=hub.archive.lookup,
            ledger=LedgerMatcher(hub.engine, prefix=prefix),  # flags records that no longer match
        )

    return history_of


def lag_source(hub: Hub) -> LagSource:
    """Each projection's lag; one whose tracking cannot be read now (database down) is left out:
    /health reports the database itself, and a lag it cannot know is not invented."""

    async def lag() -> dict[str, int]:
        out: dict[str, int] = {}
        for runner in hub.runners:
            try:
                out.update(await runner.lags())
            except (DBAPIError, PoolTimeoutError):
                continue
        return out

    return lag
