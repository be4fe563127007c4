"""Composition root: Settings -> bus, archive, adapters, projections, API services, transports, delivery.

`build_hub(settings, **overrides)` returns a `Hub` that owns every long-lived object: the
translation workers and projection runners, the API's services (`hub.api`, served by
hub.api.app.build_api), the HTTP/MLLP ingest paths, the inbox watcher and webhook delivery.
Nothing happens at import or in `build_hub`; `async with hub:` starts the bus, provisions the
topic catalogue and the hub's own tables, and closes everything on the way out. The CLI and the
tests build the hub only this way; tests replace a part with a keyword override (a clock, an
adapter, an access log, the webhooks' HTTP transport).

What only some roles use is imported where it is built, not at the top: the projector child of
`hub serve` (`--role project`, hub.cli.companion) runs the read models and delivery only, and
importing the translators' adapters (openpyxl, hl7apy, biip...) and the web framework cost it
seconds of start-up and tens of MB it never used. The translators, HTTP/MLLP ingest, the inbox
and the API's services import their modules when a hub whose roles need them builds them.
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

from hub.api.readiness import outbox_backlog
from hub.auth.keys import KeyStore
from hub.bus.embedded import EmbeddedBus
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
from hub.ingest.pgarchive import PostgresRawArchive
from hub.ingest.relay import OutboxRelay
from hub.metrics import ProcessMetrics
from hub.pipeline import ROLES
from hub.ports import SystemClock
from hub.settings import BusKind, Mode, Settings
from hub.translation.deadletters import DeadLetterBook, DeadLetterStore, PostgresDeadLetterStore
from hub.translation.snapshot_state import open_snapshot_store
from hub.translation.snapshots import SnapshotDiffer
from projections.assets.queries import maintenance_facts
from projections.assets.registry import DEMO_CONFIG, AssetRegistry, RegistryConfig
from projections.assets.tables import assets as registry_assets
from projections.audit.ledger import AuditLedger
from projections.audit.seals import seal_key
from projections.compliance.projection import Compliance
from projections.device_health import AssetFacts, DeviceHealth, DeviceHealthConfig
from projections.device_health.rules import load_rule_set
from projections.energy import Energy, EnergyConfig
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
    from collections.abc import Callable, Coroutine, Iterable, Mapping
    from types import TracebackType

    import httpx
    from sqlalchemy import Connection, Engine

    from adapters.base import AdapterSpec
    from hub.api.security import AccessLog
    from hub.api.services import ApiServices, Publisher
    from hub.ingest.http_edge import Ingestor
    from hub.ingest.inbox import InboxWatcher
    from hub.ingest.mllp import MllpIngest
    from hub.ports import Clock, EventBus, RawArchive
    from hub.scan.service import ScanDesk
    from hub.translation.worker import TranslationWorker
    from projections.energy.figures import SiteFigures
    from projections.runtime.base import Projection

logger = structlog.get_logger()


def make_bus(settings: Settings, *, node: bool = False) -> EventBus:
    """The configured bus. `node`: this process is a long-running `hub serve` node, so its Kafka
    group members may be static (HUB_NODE_ID); one-off commands never are, or they would fence it."""
    if settings.bus is BusKind.KAFKA:
        from hub.bus.kafka import KafkaBus  # noqa: PLC0415 - aiokafka only for a Kafka hub

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
            raw_days=settings.telemetry_raw_days,
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
    from adapters.bms.mapping import BmsMapping  # noqa: PLC0415  (lazy: see the module docstring)
    from projections.energy.figures import SiteFigures  # noqa: PLC0415

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
    from adapters.bms import modbus  # noqa: PLC0415  (lazy: see the module docstring)
    from adapters.bms.mapping import BmsMapping, ModbusSettings  # noqa: PLC0415

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
    # The stages this process runs (hub serve --role): what only other roles use is neither
    # built nor imported here (see the module docstring).
    roles: frozenset[str] = frozenset(ROLES)
    workers: dict[str, TranslationWorker] = field(default_factory=dict)
    # One runner for every read model on `engine`: one poller, one decode per record, one
    # transaction per batch (projections.runtime.runner). A list, so a deployment may split them.
    runners: list[ProjectionRunner] = field(default_factory=list)
    # Built by build_hub once the hub exists (they hold it): delivery; HTTP ingest and the API
    # on first use (below).
    webhooks: WebhookService = field(init=False)
    notify: NotificationDelivery = field(init=False)
    alerts: AlertService = field(init=False)
    webhook_targets: TargetPolicy = field(init=False)
    ack_links: AckLinks | None = None
    access_log: AccessLog | None = None  # None: audit.access.v1 on the bus
    # This process's latency histograms and gauges (hub.metrics; counts are read from the archive).
    metrics: ProcessMetrics = field(default_factory=ProcessMetrics)

    @cached_property
    def mllp(self) -> MllpIngest:
        """The MLLP listener's handler (built on first use: it needs the HIS adapter)."""
        from hub.ingest.mllp import MllpIngest  # noqa: PLC0415  (lazy: see the module docstring)

        return MllpIngest(self)

    @cached_property
    def inbox(self) -> InboxWatcher:
        """The inbox/<system>/ drop-folder watcher (built on first use: it creates the folders)."""
        from hub.ingest.inbox import InboxWatcher  # noqa: PLC0415  (lazy: see the module docstring)

        return InboxWatcher(self, self.settings.inbox_dir)

    @cached_property
    def ingestor(self) -> Ingestor:
        """Storing what HTTP and Modbus bring (built on first use)."""
        from hub.ingest.http_edge import Ingestor  # noqa: PLC0415

        return Ingestor(self)

    @cached_property
    def api(self) -> ApiServices:
        """The API's services (built on first use: a process without the API role, such as the
        projector `hub serve` starts, never imports the web framework)."""
        return api_services(self)

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
            if "api" in self.roles and self.api.scan is not None:  # the API's own tables
                self.api.scan.keys.ensure_tables()
            if self.ack_links is not None:
                self.ack_links.ensure_tables()

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
    roles: Iterable[str] | None = None,
) -> Hub:
    """Every long-lived object of one hub, wired (see the module docstring).

    Overrides: `bus` (another EventBus), `clock` (API "now" and the runners' ticks), `adapters`
    (system -> AdapterSpec, e.g. a fake translator), `projections` (the read models), `access_log`
    (where audited reads are recorded; default: audit.access.v1 on the bus), `webhook_transport`
    (the webhooks' httpx transport). `roles`: the stages this process runs (`hub serve --role`,
    default all); a hub of the project role alone has no translators (nor their adapters).
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
        roles=frozenset(ROLES) if roles is None else frozenset(roles),
        access_log=access_log,
    )
    if hub.roles & {"ingest", "translate", "api"}:  # the stages that store or translate messages
        hub.workers.update(translation_workers(hub, adapters))
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
    hub.webhook_targets = targets = TargetPolicy.of(settings.webhook_allow)
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
    hub.ack_links = (
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
        ack_links=hub.ack_links,
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
    return hub


def translation_workers(hub: Hub, adapters: Mapping[str, AdapterSpec] | None) -> dict[str, TranslationWorker]:
    """One translator per adapter (default: every adapter of hub.translation.registry)."""
    from hub.translation.registry import ADAPTERS  # noqa: PLC0415  (lazy: see the module docstring)
    from hub.translation.worker import MB, FileLimits, MappingSource, TranslationWorker  # noqa: PLC0415

    settings = hub.settings
    return {
        system: TranslationWorker(
            adapter=adapter,
            mappings=MappingSource(adapter, settings.mapping_dir, secret=settings.secret_bytes),
            bus=hub.bus,
            archive=hub.archive,
            dead_letters=hub.dead_letters,
            differ=hub.differ,
            site=settings.site,
            tz=settings.zone,
            prefix=settings.topic_prefix,
            files=FileLimits(
                chunk_rows=settings.file_chunk_rows, memory_budget_bytes=settings.file_memory_budget_mb * MB
            ),
        )
        for system, adapter in (ADAPTERS if adapters is None else adapters).items()
    }


def api_services(hub: Hub) -> ApiServices:
    """The services the HTTP API serves (hub.api.app.build_api) for `hub`."""
    from hub.api.browser import MessageBrowser  # noqa: PLC0415  (lazy: see the module docstring)
    from hub.api.readiness import HealthLimits, Listeners, readiness_source  # noqa: PLC0415
    from hub.api.security import Security, bus_access_log  # noqa: PLC0415
    from hub.api.services import (  # noqa: PLC0415
        ApiServices,
        ArchiveRawReader,
        as_of_reader,
        history_reader,
        lag_source,
        ledger_status_source,
        publisher,
    )
    from hub.ops import channel_source, ops_source  # noqa: PLC0415
    from hub.translation.retry import HubDeadLetters  # noqa: PLC0415

    settings, engine, bus, clock = hub.settings, hub.engine, hub.bus, hub.clock
    prefix = settings.topic_prefix
    listeners: Listeners = {}
    letters = HubDeadLetters(hub)
    publish = publisher(hub)
    limits = HealthLimits(
        max_lag=settings.health_max_lag,
        min_free_mb=settings.health_min_free_mb,
        timeout_s=settings.health_timeout_s,
    )
    return ApiServices(
        engine=engine,
        security=Security(
            keys=hub.keys,
            access_log=hub.access_log if hub.access_log is not None else bus_access_log(bus, prefix),
            required=settings.auth_required,
            site=settings.site,
        ),
        clock=clock,
        bus=bus,
        topic_prefix=prefix,
        site=settings.site,
        zone=settings.zone,
        projections=hub.projections,
        runners_lag=lag_source(hub),
        ingest=hub.ingestor,
        raw=ArchiveRawReader(hub.archive),
        publish=publish,
        as_of=as_of_reader(hub),
        history=history_reader(hub),
        channels=channel_source(hub),  # GET /channels and /metrics (hub.ops)
        ops=ops_source(hub),
        process_metrics=hub.metrics,
        dead_letters=letters,
        subscriptions=hub.subscriptions,
        messages=MessageBrowser(hub.archive, engine, letters, encodings=_encodings(hub)),
        webhook_targets=hub.webhook_targets,
        webhook_rotation_overlap=timedelta(hours=settings.webhook_rotation_overlap_h),
        energy_site=_energy_site(hub),
        readiness=readiness_source(hub, limits, listeners),
        listeners=listeners,
        ledger_status=ledger_status_source(engine, seal_key(settings.secret_bytes)),
        scan=scan_desk(settings, engine, publish, clock),
        ack_links=hub.ack_links,
    )


def scan_desk(settings: Settings, engine: Engine, publish: Publisher, clock: Clock) -> ScanDesk:
    """Scan-to-report's service, the labels' reporting keys and the rate limits (hub.scan)."""

    from hub.scan.keys import ReportKeyStore  # noqa: PLC0415  (lazy: see the module docstring)
    from hub.scan.limits import RateLimiter  # noqa: PLC0415
    from hub.scan.service import ScanDesk, ScanService  # noqa: PLC0415
    from hub.scan.symptoms import load_symptoms  # noqa: PLC0415

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
