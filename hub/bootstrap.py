"""Composition root: Settings -> bus, archive, adapters, projections, API services, transports, delivery.

`build_hub(settings, **overrides)` returns a `Hub` that owns every long-lived object: the
translation workers and projection runners, the API's services (`hub.api`, served by
hub.api.app.build_api), the HTTP/MLLP ingest paths, the inbox watcher and webhook delivery.
Nothing happens at import or in `build_hub`; `async with hub:` starts the bus, provisions the
topic catalogue and the hub's own tables, and closes everything on the way out. The CLI and the
tests build the hub only this way; tests replace a part with a keyword override (a clock, an
adapter, an access log, the webhooks' HTTP transport).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

import structlog
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError

from adapters.bms import modbus
from adapters.bms.mapping import BmsMapping, ModbusSettings
from hub.api.browser import MessageBrowser
from hub.api.readiness import HealthLimits, Listeners, outbox_backlog, readiness_source
from hub.api.security import AccessLog, Security, bus_access_log
from hub.api.services import (
    ApiServices,
    ArchiveRawReader,
    as_of_reader,
    history_reader,
    lag_source,
    ledger_status_source,
    publisher,
)
from hub.auth.keys import KeyStore
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus
from hub.delivery.ack_links import AckLinks
from hub.delivery.alerts import AlertBook, AlertService, ArchiveProbe, Probes
from hub.delivery.alerts import load_rules as load_rules_alerts
from hub.delivery.alerts.probes import disk_free_mb
from hub.delivery.robots import NotificationDelivery
from hub.delivery.webhooks import Backoff, SubscriptionStore, Tuning, WebhookService, subscription_key
from hub.delivery.webhooks.targets import TargetPolicy
from hub.errors import ConfigError
from hub.ingest.archive import GroupCommitArchive, SqliteRawArchive
from hub.ingest.crypto import RawCipher, parse_key
from hub.ingest.http_edge import Ingestor
from hub.ingest.inbox import InboxWatcher
from hub.ingest.mllp import MllpIngest
from hub.ingest.pgarchive import PostgresRawArchive
from hub.ingest.relay import OutboxRelay
from hub.metrics import ProcessMetrics
from hub.ops import channel_source, ops_source
from hub.ports import SystemClock
from hub.scan.keys import ReportKeyStore
from hub.scan.limits import RateLimiter
from hub.scan.service import ScanDesk, ScanService
from hub.scan.symptoms import load_symptoms
from hub.settings import BusKind, Mode, Settings
from hub.translation.deadletters import DeadLetterBook, DeadLetterStore, PostgresDeadLetterStore
from hub.translation.registry import ADAPTERS
from hub.translation.retry import HubDeadLetters
from hub.translation.snapshot_state import open_snapshot_store
from hub.translation.snapshots import SnapshotDiffer
from hub.translation.worker import MB, FileLimits, MappingSource, TranslationWorker
from projections.assets.queries import maintenance_facts
from projections.assets.registry import DEMO_CONFIG, AssetRegistry, RegistryConfig
from projections.assets.tables import assets as registry_assets
from projections.audit.ledger import AuditLedger
from projections.audit.seals import seal_key
from projections.compliance.projection import Compliance
from projections.device_health import AssetFacts, DeviceHealth, DeviceHealthConfig
from projections.device_health.rules import load_rule_set
from projections.energy import Energy, EnergyConfig
from projections.energy.figures import SiteFigures
from projections.inventory.projection import Inventory
from projections.notifications.projection import Notifications
from projections.notifications.rules import load_rules
from projections.raw_scope.projection import RawScope
from projections.runtime.db import make_engine
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import ensure_tables
from projections.work_orders.projection import WorkOrders
from topics.catalogue import CATALOGUE

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping
    from types import TracebackType

    import httpx
    from sqlalchemy import Connection, Engine

    from adapters.base import AdapterSpec
    from hub.api.services import Publisher
    from hub.ports import Clock, EventBus, RawArchive
    from projections.runtime.base import Projection

logger = structlog.get_logger()


def make_bus(settings: Settings, *, node: bool = False) -> EventBus:
    """The configured bus. `node`: this process is a long-running `hub serve` node, so its Kafka
    group members may be static (HUB_NODE_ID); one-off commands never are, or they would fence it."""
    if settings.bus is BusKind.KAFKA:
        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=f"hub-{settings.site}",
            replication_factor=settings.kafka_replication_factor,
            instance_id=settings.node_id if node else None,
        )
    return EmbeddedBus(settings.bus_path)


def make_projections(settings: Settings | None = None) -> list[Projection]:
    """Every read model the hub maintains, configured from settings (demo mode: the demo's pool)."""
    registry = (
        RegistryConfig()
        if settings is None
        else (
            replace(DEMO_CONFIG, site_tz=settings.tz)
            if settings.mode is Mode.DEMO
            else RegistryConfig(site_tz=settings.tz)
        )
    )
    # The ledger signs the checkpoints it keeps with a key derived from HUB_SECRET_KEY.
    ledger = AuditLedger(seal_key=None if settings is None else seal_key(settings.secret_bytes))
    notify = (
        Notifications()
        if settings is None
        else Notifications(load_rules(settings.notify_rules, zone=settings.zone), site=settings.site)
    )
    energy = Energy(
        EnergyConfig() if settings is None else EnergyConfig(tz=settings.zone, site=settings.site)
    )
    health = DeviceHealth(
        DeviceHealthConfig(facts=registry_facts)
        if settings is None
        else DeviceHealthConfig(
            tz=settings.zone,
            site=settings.site,
            rules=load_rule_set(settings.device_rules),
            facts=registry_facts,
        )
    )
    models = (
        AssetRegistry(registry),
        Inventory(),
        WorkOrders(),
        Compliance(),
        ledger,
        RawScope(),
        energy,
        health,
    )
    return [*models, notify]


ASSET_TABLE = registry_assets.name


def registry_facts(conn: Connection, subject: str) -> AssetFacts | None:
    """What the device-health rules read from the asset registry (the two models share a database;
    a read model rebuilt or checked on its own, without the registry's tables, reads nothing)."""
    if not sa_inspect(conn).has_table(ASSET_TABLE):
        return None
    found = maintenance_facts(conn, subject)
    return None if found is None else AssetFacts(**found)


def webhook_tuning(settings: Settings) -> Tuning:
    """The webhook delivery loop's timings from HUB_WEBHOOK_* (the rest keep their defaults)."""
    return Tuning(
        timeout_s=settings.webhook_timeout_s,
        backoff=Backoff(settings.webhook_backoff_initial_s, settings.webhook_backoff_cap_s),
        concurrency=settings.webhook_concurrency,
        max_attempts=settings.webhook_max_attempts,
        log_days=settings.webhook_log_days,
    )


def alert_probes(hub: Hub) -> Probes:
    """What the alert rules measure, for `hub`: its raw archive, dead letters, runners and disk."""
    settings = hub.settings
    archive = (
        ArchiveProbe.postgres(settings.archive_url)
        if settings.archive_url
        else ArchiveProbe.sqlite(settings.archive_path)
    )

    async def last_received(system: str, transport: str | None) -> datetime | None:
        return await asyncio.to_thread(archive.last_received, system, transport)

    async def ack_answers(system: str, since: datetime) -> tuple[int, int]:
        return await asyncio.to_thread(archive.answers, system, since)

    async def open_dead_letters() -> int:
        return await hub.dead_letters.count(status="open")

    async def lag() -> int:
        total = 0
        for runner in hub.runners:
            total += await runner.lag()
        return total + await asyncio.to_thread(outbox_backlog, hub.engine)  # derived events waiting

    async def disk() -> int:
        return await asyncio.to_thread(disk_free_mb, settings.data_dir)

    return Probes(last_received, ack_answers, open_dead_letters, lag, disk, close=archive.close)


def _energy_site(hub: Hub) -> Callable[[], SiteFigures]:
    """The figures of the BMS mapping in force (energy intensity per m2 and per bed-day)."""

    def figures() -> SiteFigures:
        worker = hub.workers.get("bms")
        mapping = None if worker is None else worker.mappings.current()
        if not isinstance(mapping, BmsMapping):
            return SiteFigures()
        return SiteFigures(areas=mapping.areas(), beds=mapping.beds(), occupied=mapping.occupied_bed_days(),
                           names=mapping.place_names())  # fmt: skip

    return figures


def modbus_poller(hub: Hub, stop: asyncio.Event) -> Coroutine[Any, Any, None] | None:
    """The Modbus poll loop of the BMS mapping's targets (None when it lists none).

    Each round's readings are stored like a gateway push (`POST /ingest/bms`) before translation.
    """
    worker = hub.workers.get("bms")
    if worker is None:
        return None

    def settings() -> ModbusSettings:
        mapping = worker.mappings.current()
        return mapping.modbus if isinstance(mapping, BmsMapping) else ModbusSettings()

    if not settings().targets:
        return None

    async def submit(body: bytes, message_id: str) -> None:
        await hub.ingestor.store(
            "bms", body, message_id=message_id, transport="modbus", metadata={"filename": message_id}
        )

    return modbus.run_forever(settings, submit, stop, hub.clock.now)


def _encodings(hub: Hub) -> Callable[[str], str | None]:
    """system -> the encoding its current mapping forces, if any (the message browser's decoder)."""

    def encoding(system: str) -> str | None:
        worker = hub.workers.get(system)
        value = None if worker is None else getattr(worker.mappings.current(), "encoding", None)
        return value if isinstance(value, str) else None

    return encoding


@dataclass
class Hub:
    settings: Settings
    bus: EventBus
    archive: RawArchive
    dead_letters: DeadLetterBook
    differ: SnapshotDiffer
    engine: Engine
    relay: OutboxRelay
    clock: Clock
    keys: KeyStore
    subscriptions: SubscriptionStore
    workers: dict[str, TranslationWorker] = field(default_factory=dict)
    # One runner for every read model on `engine`: one poller, one decode per record, one
    # transaction per batch (projections.runtime.runner). A list, so a deployment may split them.
    runners: list[ProjectionRunner] = field(default_factory=list)
    # Built by build_hub once the hub exists (they hold it): HTTP ingest, delivery and the API.
    ingestor: Ingestor = field(init=False)
    webhooks: WebhookService = field(init=False)
    notify: NotificationDelivery = field(init=False)
    alerts: AlertService = field(init=False)
    api: ApiServices = field(init=False)
    # This process's latency histograms and gauges (hub.metrics; counts are read from the archive).
    metrics: ProcessMetrics = field(default_factory=ProcessMetrics)

    @cached_property
    def mllp(self) -> MllpIngest:
        """The MLLP listener's handler (built on first use: it needs the HIS adapter)."""
        return MllpIngest(self)

    @cached_property
    def inbox(self) -> InboxWatcher:
        """The inbox/<system>/ drop-folder watcher (built on first use: it creates the folders)."""
        return InboxWatcher(self, self.settings.inbox_dir)

    def archive_commits(self, observe: Callable[[float, int], None]) -> None:
        """Have the archive report each group commit's duration and size (hub.metrics)."""
        if isinstance(self.archive, GroupCommitArchive):
            self.archive.commit_observer = observe

    @property
    def projections(self) -> list[Projection]:
        """Every read model the runners maintain, in wiring order."""
        return [p for runner in self.runners for p in runner.projections]

    async def __aenter__(self) -> Self:
        try:
            await self.bus.start()
            await self.bus.ensure_topics(CATALOGUE, self.settings.topic_prefix)
            await self._ensure_read_model_tables()
        except BaseException:
            await self.close()  # a failed start leaves nothing open behind it
            raise
        return self

    async def _ensure_read_model_tables(self) -> None:
        """Create the read-model database's tables once, before any task starts.

        The API's lifespan and the runners create them too (idempotent; the database may come back
        later), but at the same time; on a restarted SQLite hub that raced into "database is
        locked". Created here first, serially, theirs are only checks. An unreachable database is
        not a reason to stay down (the API reports it on /health; the runners retry); any other
        failure is: it propagates and the command exits non-zero with it.
        """

        def ensure() -> None:
            ensure_tables(self.engine, self.projections)
            self.keys.ensure_tables()
            self.subscriptions.ensure_tables()
            self.alerts.book.ensure_tables()
            if self.api.scan is not None:
                self.api.scan.keys.ensure_tables()
            if self.api.ack_links is not None:
                self.api.ack_links.ensure_tables()

        try:
            await asyncio.to_thread(ensure)
        except DBAPIError as exc:
            # No statement: the connection itself failed (server down). With one, the database
            # answered and refused (locked past the busy timeout, a broken schema): that stops us.
            if exc.statement is not None:
                raise
            logger.info("read_model_tables_deferred", error=type(exc.orig).__name__)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for worker in self.workers.values():
            await worker.close()
        for runner in self.runners:
            await runner.close()
        await self.bus.close()
        if "mllp" in self.__dict__:  # built (cached_property): its translator processes end here
            self.mllp.close()
        self.archive.close()
        self.dead_letters.close()
        self.differ.close()
        if "alerts" in self.__dict__:
            self.alerts.close()
        self.engine.dispose()

    def worker(self, system: str) -> TranslationWorker:
        try:
            return self.workers[system]
        except KeyError:
            raise ConfigError(
                f"no adapter for system {system!r}; known: {', '.join(sorted(self.workers))}"
            ) from None


def build_hub(
    settings: Settings,
    *,
    bus: EventBus | None = None,
    clock: Clock | None = None,
    adapters: Mapping[str, AdapterSpec] | None = None,
    projections: list[Projection] | None = None,
    access_log: AccessLog | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Hub:
    """Every long-lived object of one hub, wired (see the module docstring).

    Overrides: `bus` (another EventBus), `clock` (API "now" and the runners' ticks), `adapters`
    (system -> AdapterSpec, e.g. a fake translator), `projections` (the read models), `access_log`
    (where audited reads are recorded; default: audit.access.v1 on the bus), `webhook_transport`
    (the webhooks' httpx transport).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bus = bus if bus is not None else make_bus(settings)
    clock = clock if clock is not None else SystemClock()
    cipher = RawCipher(parse_key(settings.raw_key.get_secret_value())) if settings.raw_key else None
    # The archive's own limit backs up every transport's: no path can store more than these allow.
    limit = max(settings.max_file_bytes, settings.mllp_max_bytes)
    archive: RawArchive
    dead_letters: DeadLetterBook
    if settings.archive_url:
        # Shared by every node (scale-out): nothing of the raw side stays in this data dir.
        archive = PostgresRawArchive(settings.archive_url, cipher=cipher, max_bytes=limit)
        dead_letters = PostgresDeadLetterStore(settings.archive_url)
    else:
        archive = SqliteRawArchive(settings.archive_path, cipher=cipher, max_bytes=limit)
        dead_letters = DeadLetterStore(settings.archive_path)
    # Snapshot and noted state beside the archive: shared by every node when the archive is.
    differ = SnapshotDiffer(open_snapshot_store(settings.archive_path, settings.archive_url))
    engine = make_engine(settings.database_url)
    prefix = settings.topic_prefix
    hub = Hub(
        settings=settings,
        bus=bus,
        archive=archive,
        dead_letters=dead_letters,
        differ=differ,
        engine=engine,
        relay=OutboxRelay(archive, bus, prefix=prefix),
        clock=clock,
        keys=KeyStore(engine),
        subscriptions=SubscriptionStore(engine, subscription_key(settings.secret_bytes)),
    )
    for system, adapter in (ADAPTERS if adapters is None else adapters).items():
        hub.workers[system] = TranslationWorker(
            adapter=adapter,
            mappings=MappingSource(adapter, settings.mapping_dir, secret=settings.secret_bytes),
            bus=bus,
            archive=archive,
            dead_letters=dead_letters,
            differ=differ,
            site=settings.site,
            tz=settings.zone,
            prefix=prefix,
            files=FileLimits(
                chunk_rows=settings.file_chunk_rows, memory_budget_bytes=settings.file_memory_budget_mb * MB
            ),
        )
    read_models = make_projections(settings) if projections is None else projections
    hub.archive_commits(hub.metrics.observe_commit)
    for worker in hub.workers.values():
        worker.observe_translate = hub.metrics.observe_translate
    hub.runners = (
        [
            ProjectionRunner(
                read_models,
                bus,
                engine,
                prefix=prefix,
                clock=clock,
                tick_interval_s=settings.projection_tick_s,
            )
        ]
        if read_models
        else []
    )
    hub.ingestor = Ingestor(hub)
    targets = TargetPolicy.of(settings.webhook_allow)
    hub.webhooks = WebhookService(
        hub.subscriptions,
        bus,
        prefix=prefix,
        transport=webhook_transport,
        targets=targets,
        clock=clock,
        tuning=webhook_tuning(settings),
    )
    # Robot and webhook channels of the notification rules the read model runs with.
    rules = next((p.rules for p in read_models if isinstance(p, Notifications)), None)
    ack_links = (
        AckLinks(
            engine,
            settings.secret_bytes,
            public_url=settings.public_url,
            ttl=timedelta(hours=settings.notify_ack_link_hours),
        )
        if settings.notify_ack_link_hours
        else None
    )
    hub.notify = NotificationDelivery(
        rules if rules is not None else load_rules(settings.notify_rules, zone=settings.zone),
        bus,
        clock,
        prefix=prefix,
        site=settings.site,
        targets=targets,
        transport=webhook_transport,
        ack_links=ack_links,
    )
    hub.alerts = AlertService(
        load_rules_alerts(settings.alert_rules),
        alert_probes(hub),
        AlertBook(engine),
        bus,
        clock,
        zone=settings.zone,
        prefix=prefix,
        site=settings.site,
        interval_s=settings.alert_interval_s,
    )
    listeners: Listeners = {}
    letters = HubDeadLetters(hub)
    publish = publisher(hub)
    limits = HealthLimits(
        max_lag=settings.health_max_lag,
        min_free_mb=settings.health_min_free_mb,
        timeout_s=settings.health_timeout_s,
    )
    hub.api = ApiServices(
        engine=engine,
        security=Security(
            keys=hub.keys,
            access_log=access_log if access_log is not None else bus_access_log(bus, prefix),
            required=settings.auth_required,
            site=settings.site,
        ),
        clock=clock,
        bus=bus,
        topic_prefix=prefix,
        site=settings.site,
        zone=settings.zone,
        projections=read_models,
        runners_lag=lag_source(hub),
        ingest=hub.ingestor,
        raw=ArchiveRawReader(archive),
        publish=publish,
        as_of=as_of_reader(hub),
        history=history_reader(hub),
        channels=channel_source(hub),  # GET /channels and /metrics (hub.ops)
        ops=ops_source(hub),
        process_metrics=hub.metrics,
        dead_letters=letters,
        subscriptions=hub.subscriptions,
        messages=MessageBrowser(archive, engine, letters, encodings=_encodings(hub)),
        webhook_targets=targets,
        webhook_rotation_overlap=timedelta(hours=settings.webhook_rotation_overlap_h),
        energy_site=_energy_site(hub),
        readiness=readiness_source(hub, limits, listeners),
        listeners=listeners,
        ledger_status=ledger_status_source(engine, seal_key(settings.secret_bytes)),
        scan=scan_desk(settings, engine, publish, clock),
        ack_links=ack_links,
    )
    return hub


def scan_desk(settings: Settings, engine: Engine, publish: Publisher, clock: Clock) -> ScanDesk:
    """Scan-to-report's service, the labels' reporting keys and the rate limits (hub.scan)."""

    def seconds() -> float:
        return clock.now().timestamp()

    return ScanDesk(
        service=ScanService(
            engine, publish, clock, load_symptoms(settings.scan_symptoms), site=settings.site
        ),
        keys=ReportKeyStore(engine, settings.secret_bytes),
        reports_per_key=RateLimiter(settings.scan_reports_per_key_per_minute, now=seconds),
        reports_per_client=RateLimiter(settings.scan_reports_per_client_per_minute, now=seconds),
        views_per_client=RateLimiter(settings.scan_views_per_client_per_minute, now=seconds),
    )
