"""Composition root: Settings -> bus, archive, adapters, projections. Nothing happens at import.

`build_hub(settings)` returns a `Hub` that owns every long-lived object; `async with hub:`
starts the bus, provisions the topic catalogue, and closes everything on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Self

from hub.archive import SqliteRawArchive
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus
from hub.crypto import RawCipher, parse_key
from hub.deadletters import DeadLetterStore
from hub.errors import ConfigError
from hub.registry import ADAPTERS
from hub.relay import OutboxRelay
from hub.settings import BusKind, Mode, Settings
from hub.snapshots import SnapshotDiffer
from hub.translation import MappingSource, TranslationWorker
from projections.asset_registry import DEMO_CONFIG, AssetRegistry, RegistryConfig
from projections.audit_ledger import AuditLedger
from projections.audit_seals import seal_key
from projections.compliance import Compliance
from projections.db import make_engine
from projections.inventory import Inventory
from projections.runner import ProjectionRunner
from projections.work_orders import WorkOrders
from topics.catalogue import CATALOGUE

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy import Engine

    from hub.ports import EventBus, RawArchive
    from projections.base import Projection


def make_bus(settings: Settings) -> EventBus:
    if settings.bus is BusKind.KAFKA:
        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=f"hub-{settings.site}",
            replication_factor=settings.kafka_replication_factor,
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
    return [AssetRegistry(registry), Inventory(), WorkOrders(), Compliance(), ledger]


@dataclass
class Hub:
    settings: Settings
    bus: EventBus
    archive: RawArchive
    dead_letters: DeadLetterStore
    differ: SnapshotDiffer
    engine: Engine
    relay: OutboxRelay
    workers: dict[str, TranslationWorker] = field(default_factory=dict)
    runners: list[ProjectionRunner] = field(default_factory=list)

    async def __aenter__(self) -> Self:
        await self.bus.start()
        await self.bus.ensure_topics(CATALOGUE, self.settings.topic_prefix)
        return self

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
        self.archive.close()
        self.dead_letters.close()
        self.differ.close()
        self.engine.dispose()

    def worker(self, system: str) -> TranslationWorker:
        try:
            return self.workers[system]
        except KeyError:
            raise ConfigError(
                f"no adapter for system {system!r}; known: {', '.join(sorted(self.workers))}"
            ) from None


def build_hub(settings: Settings) -> Hub:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bus = make_bus(settings)
    cipher = RawCipher(parse_key(settings.raw_key.get_secret_value())) if settings.raw_key else None
    # The archive's own limit backs up every transport's: no path can store more than these allow.
    limit = max(settings.max_file_bytes, settings.mllp_max_bytes)
    archive = SqliteRawArchive(settings.archive_path, cipher=cipher, max_bytes=limit)
    dead_letters = DeadLetterStore(settings.archive_path)
    differ = SnapshotDiffer(settings.archive_path)
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
    )
    for system, adapter in ADAPTERS.items():
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
        )
    hub.runners = [ProjectionRunner(p, bus, engine, prefix=prefix) for p in make_projections(settings)]
    return hub
