"""What the HTTP API works with: one typed bundle, built by the composition root (hub.bootstrap).

Every field is always present: the API runs inside a hub that has its bus, archive, read-model
database and key store, so no route needs a "service missing" answer. Routes receive these
through the `Annotated` dependencies of hub.api.deps, never by looking at the app's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from hub.api.state import ApiMetrics, LagSource
from hub.delivery.webhooks.targets import TargetPolicy
from hub.errors import ArchiveError
from hub.ports import Clock, event_out_record
from projections.audit.ledger import checkpoints
from projections.energy.figures import SiteFigures
from replay.as_of import asset_as_of
from replay.audit.match import LedgerMatcher
from replay.audit.verify import verify
from replay.history import HistoryEntry, SubjectKind, history
from topics.catalogue import topic_for_event_type

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.api.browser import MessageBrowser
    from hub.api.readiness import Listeners, ReadinessSource
    from hub.api.security import Security
    from hub.bootstrap import Hub
    from hub.delivery.ack_links import AckLinks
    from hub.delivery.webhooks import SubscriptionStore
    from hub.ingest.http_edge import Ingestor
    from hub.metrics import ChannelSource, OpsSource, ProcessMetrics
    from hub.ports import EventBus, MessageStatus, RawArchive, RawRecord
    from hub.scan.service import ScanDesk
    from hub.translation.retry import HubDeadLetters
    from projections.runtime.base import Projection
    from schemas.envelope import EventBase

Publisher = Callable[["EventBase"], Awaitable[None]]
AsOfReader = Callable[[str, datetime, datetime], Awaitable[dict[str, Any] | None]]
HistoryReader = Callable[[SubjectKind, str, datetime | None, bool], Awaitable[list[HistoryEntry]]]
# The BMS mapping's areas, beds, bed-day census and place names, read when asked: a mapping
# reloaded while the hub runs gives the new figures.
EnergySite = Callable[[], SiteFigures]


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


UNVERIFIED_LEDGER: dict[str, Any] = {
    "intact": False,
    "chains": 0,
    "entries": 0,
    "seals_checked": 0,
    "findings": [{"kind": "unchecked", "where": "ledger", "detail": "this API has no ledger to verify"}],
    "elapsed_ms": 0.0,
    "checkpoints": 0,
    "last_checkpoint": None,
}  # an API built without a ledger to check (tests of other routes)


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
    # How long a rotated-out webhook secret keeps signing (HUB_WEBHOOK_ROTATION_OVERLAP_H).
    webhook_rotation_overlap: timedelta = timedelta(hours=24)
    energy_site: EnergySite = field(default=SiteFigures)
    readiness: ReadinessSource | None = None  # GET /health/ready; None: the database check alone
    # GET /audit/ledger: hub.bootstrap gives the real check (ledger_status_source)
    ledger_status: Callable[[], dict[str, Any]] = field(default=lambda: dict(UNVERIFIED_LEDGER))
    # Listeners `hub serve` opened (name -> serving?), registered as they start: /health/ready reports them.
    listeners: Listeners = field(default_factory=dict)
    scan: ScanDesk | None = None  # /r/{asset id} (scan-to-report); None: not served
    ack_links: AckLinks | None = None  # one-time acknowledgement links in robot messages; None: off
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    # GET /channels and the durable part of /metrics (hub.ops); the process's own latencies.
    channels: ChannelSource | None = None
    ops: OpsSource | None = None
    process_metrics: ProcessMetrics | None = None
    # Set when the server is stopping: open event streams end at their next poll, so clients
    # reconnect (elsewhere, or later) from their last id instead of being cut off mid-response.
    draining: asyncio.Event = field(default_factory=asyncio.Event)


def ledger_status_source(engine: Engine, seal: bytes) -> Callable[[], dict[str, Any]]:
    """Verify the audit ledger (as `hub audit verify` without --log) and find its last checkpoint."""

    def status() -> dict[str, Any]:
        report = verify(engine, seal_key=seal)
        with engine.connect() as conn:
            if inspect(conn).has_table(checkpoints.name):
                kept = conn.execute(select(func.count()).select_from(checkpoints)).scalar_one()
                last = (
                    conn.execute(
                        select(checkpoints)
                        .order_by(checkpoints.c.created_at.desc(), checkpoints.c.count.desc())
                        .limit(1)
                    )
                    .mappings()
                    .first()
                )
            else:
                kept, last = 0, None
        return {
            "intact": report.intact,
            "chains": report.chains,
            "entries": report.entries,
            "seals_checked": report.seals_checked,
            "findings": [
                {"kind": str(f.kind), "where": f.where(), "detail": f.detail} for f in report.findings
            ],
            "elapsed_ms": round(report.elapsed_s * 1000, 1),
            "checkpoints": int(kept),
            "last_checkpoint": dict(last) if last is not None else None,
        }

    return status


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
