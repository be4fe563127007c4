"""The Kafka event bus: hub.ports.EventBus over aiokafka, for a hospital group's broker cluster.

- Producer with acks="all": `publish` returns once every record is acknowledged by all in-sync
  replicas, with its (partition, offset). Partitions are computed by hub.bus.partitioner (murmur2
  of the UTF-8 key, as the Java client) and passed explicitly, so a key lands on the same
  partition number as on the embedded bus.
- enable_idempotence=False on purpose: the hub's exactly-once *effect* comes from deterministic
  event ids and projections that store offsets with their changes, never from the producer.
  (The Tansu test broker also rejects idempotent producers.) A failed or partial publish raises
  PublishFailed and the caller publishes again; duplicates are absorbed downstream.
- Topics are provisioned with the admin client from TopicSpec (partitions + configs); an
  existing topic counts as success. Whether the broker also creates topics implicitly
  (auto.create.topics.enable; Tansu does) is the broker's configuration, not the hub's.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from hub.bus.kafka_consumer import KafkaConsumer, ReadPositions, TimeSeeker
from hub.bus.kafka_records import unpack_into_bus_records
from hub.bus.partitioner import Partitioner
from hub.errors import BusError, PublishFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hub.ports import OutRecord
    from topics.catalogue import TopicSpec

logger = structlog.get_logger()

TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class KafkaBus:
    """aiokafka-backed EventBus.

    `session_timeout_ms` / `heartbeat_interval_ms` tune consumer groups (a short session timeout
    also shortens group joins on the Tansu test broker, which waits about half of it).
    `replication_factor` applies to topics this bus creates.
    `instance_id` (a node's stable name, HUB_NODE_ID, given by `hub serve` only) makes every group
    member static (Kafka's `group.instance.id`): a node restarted after a crash takes its partitions
    back at once instead of waiting for the dead member's session to time out. Two consumers of one
    group in one process get distinct ids (`#2`...) in the order they are made, which a restart repeats.
    """

    kind = "kafka"

    def __init__(
        self,
        bootstrap: str,
        client_id: str = "hub",
        *,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        replication_factor: int = 1,
        request_timeout_ms: int = 30_000,
        instance_id: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self._instance_id = instance_id
        self.client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._replication_factor = replication_factor
        self._request_timeout_ms = request_timeout_ms
        self._partitioner = Partitioner()
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._seeker: TimeSeeker | None = None
        self._consumers: set[KafkaConsumer] = set()
        self._static: dict[KafkaConsumer, str | None] = {}

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=False,  # see the module docstring: exactly-once effect never relies on it
            request_timeout_ms=self._request_timeout_ms,
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=self._request_timeout_ms,
        )
        probe = self._plain_consumer(f"{self.client_id}-probe")
        try:
            for client in (producer, admin, probe):
                await client.start()
        except KafkaError as exc:
            await _stop_all([producer, admin, probe])  # each is safe to stop even if it never started
            raise BusError(f"cannot connect to Kafka at {self.bootstrap}: {exc}") from exc
        self._producer, self._admin, self._seeker = producer, admin, TimeSeeker(probe)
        logger.info("bus_started", kind=self.kind, bootstrap=self.bootstrap)

    def _plain_consumer(self, client_id: str, *topics: str, **options: object) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            client_id=client_id,
            enable_auto_commit=False,
            request_timeout_ms=self._request_timeout_ms,
            **options,
        )

    async def close(self) -> None:
        consumers, self._consumers = self._consumers, set()
        for consumer in consumers:
            await consumer.close()
        clients: list[AIOKafkaProducer | AIOKafkaAdminClient | AIOKafkaConsumer] = []
        if self._producer is not None:
            clients.append(self._producer)
        if self._admin is not None:
            clients.append(self._admin)
        if self._seeker is not None:
            clients.append(self._seeker.probe)
        self._producer = self._admin = self._seeker = None
        await _stop_all(clients)

    def _started(self) -> tuple[AIOKafkaProducer, AIOKafkaAdminClient, TimeSeeker]:
        if self._producer is None or self._admin is None or self._seeker is None:
            raise BusError("the Kafka bus is not started")
        return self._producer, self._admin, self._seeker

    # --- topics ---------------------------------------------------------------------------------

    async def ensure_topics(self, specs: Sequence[TopicSpec], prefix: str = "") -> list[str]:
        _, admin, _ = self._started()
        if not specs:
            return []
        new = [
            NewTopic(s.full_name(prefix), s.partitions, self._replication_factor, topic_configs=s.configs())
            for s in specs
        ]
        try:
            response = await admin.create_topics(new)
        except KafkaError as exc:
            raise BusError(f"creating topics failed: {exc}") from exc
        created: list[str] = []
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                message = rest[0] if rest else ""
                raise BusError(f"creating topic {name!r} failed: error {code} {message}")
        if created:
            logger.info("topics_created", kind=self.kind, count=len(created))
        return created

    async def list_topics(self) -> dict[str, int]:
        _, admin, _ = self._started()
        try:
            described = await admin.describe_topics()
        except KafkaError as exc:
            raise BusError(f"listing topics failed: {exc}") from exc
        return {
            t["topic"]: len(t["partitions"])
            for t in described
            if not t.get("is_internal") and not t["topic"].startswith("__")
        }

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        _, admin, _ = self._started()
        try:
            (described,) = await admin.describe_topics([topic])
        except KafkaError as exc:
            raise BusError(f"describing topic {topic!r} failed: {exc}") from exc
        if described["error_code"] != 0 or not described["partitions"]:
            raise BusError(f"unknown topic {topic!r} (error {described['error_code']})")
        return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])

    # --- producing ------------------------------------------------------------------------------

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> list[tuple[int, int]]:
        producer, _, _ = self._started()
        if not records:
            return []
        default_ts = time.time_ns() // 1_000_000
        try:
            count = len(await producer.partitions_for(topic))
            futures = [
                await producer.send(
                    topic,
                    rec.value,
                    key=None if rec.key is None else rec.key.encode("utf-8"),
                    partition=self._partitioner.partition(topic, rec.key, count),
                    timestamp_ms=default_ts if rec.timestamp_ms is None else rec.timestamp_ms,
                    headers=list(rec.headers),
                )
                for rec in records
            ]
        except KafkaError as exc:
            raise PublishFailed(f"publish to {topic!r} failed before it was sent: {exc}") from exc
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            # Some records may be stored: the caller publishes again and consumers deduplicate by event id.
            raise PublishFailed(
                f"{len(failed)} of {len(records)} record(s) to {topic!r} not acknowledged: {failed[0]}"
            ) from failed[0]
        return [(md.partition, md.offset) for md in outcomes]  # type: ignore[union-attr]

    # --- consuming ------------------------------------------------------------------------------

    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group: str | None = None,
        from_beginning: bool = True,
        client_id: str | None = None,
    ) -> KafkaConsumer:
        _, _, seeker = self._started()
        if not topics:
            raise ValueError("a consumer reads at least one topic")
        name = client_id or self.client_id
        reset = "earliest" if from_beginning else "latest"
        if group is None:
            assigned = [tp for topic in dict.fromkeys(topics) for tp in await self._partitions(topic)]
            raw = self._plain_consumer(name, auto_offset_reset=reset)
        else:
            static = self._static_id(group)
            raw = self._plain_consumer(
                name,
                group_id=group,
                auto_offset_reset=reset,
                session_timeout_ms=self._session_timeout_ms,
                heartbeat_interval_ms=self._heartbeat_interval_ms,
                **({"group_instance_id": static} if static else {}),
            )
        positions = ReadPositions()
        if group is not None:
            raw.subscribe(list(dict.fromkeys(topics)), listener=positions)  # see KafkaConsumer.poll
        try:
            await raw.start()  # in group mode this returns once the group has assigned partitions
            unpack_into_bus_records(raw)  # aiokafka builds BusRecords itself (hub.bus.kafka_records)
            if group is None:
                raw.assign(assigned)
                if not from_beginning:
                    await raw.seek_to_end(*assigned)
        except KafkaError as exc:
            await raw.stop()
            raise BusError(f"consumer for {list(topics)} could not start: {exc}") from exc
        consumer = KafkaConsumer(raw, group=group, seeker=seeker, positions=positions)
        self._consumers = {c for c in self._consumers if not c.closed}
        self._consumers.add(consumer)
        if group is not None:
            self._static[consumer] = static
        return consumer

    def _static_id(self, group: str) -> str | None:
        """This node's static member id in `group`, unique among this process's open consumers."""
        if self._instance_id is None:
            return None
        taken = {sid for c, sid in self._static.items() if not c.closed}
        self._static = {c: sid for c, sid in self._static.items() if not c.closed}
        base = f"{self._instance_id}.{group}"
        n = 1
        while (candidate := base if n == 1 else f"{base}#{n}") in taken:
            n += 1
        return candidate

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to be written per partition, as the broker reports it (its high watermark)."""
        _, _, seeker = self._started()
        partitions = await self._partitions(topic)
        try:
            ends = await seeker.probe.end_offsets(partitions)
        except KafkaError as exc:
            raise BusError(f"end offsets of {topic!r} failed: {exc}") from exc
        return {tp.partition: int(offset) for tp, offset in ends.items()}


async def _stop_all(clients: Sequence[AIOKafkaProducer | AIOKafkaAdminClient | AIOKafkaConsumer]) -> None:
    for client in clients:
        if isinstance(client, AIOKafkaAdminClient):
            await client.close()
        else:
            await client.stop()
