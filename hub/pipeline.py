"""Running the flow: ingest -> archive -> relay -> translators -> projections.

`drain` runs every stage until nothing moves (the CLI's `ingest` and `demo`); `run_forever`
runs them as concurrent loops until asked to stop (`hub serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from hub.errors import NotStored
from hub.faults import fault_point
from hub.ports import InboundMessage, StoreOutcome

if TYPE_CHECKING:
    from pathlib import Path

    from hub.bootstrap import Hub

logger = structlog.get_logger()


# `hub serve --role`: which stages a process runs. ingest: MLLP, the inbox and the relay of the
# archive's outbox; translate: the translators; project: the projection runners and webhook
# delivery; api: the HTTP API (HTTP ingest included). A site runs them as separate processes
# or machines sharing the bus and the databases (docs/deploy-kafka.md).
ROLES = ("ingest", "translate", "project", "api")


def parse_roles(value: str) -> frozenset[str]:
    """`all` or a comma-separated list of ROLES, e.g. `ingest,translate`. Raises ValueError."""
    names = {part.strip().lower() for part in value.split(",") if part.strip()}
    if not names or "all" in names:
        return frozenset(ROLES)
    unknown = names - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role {', '.join(sorted(unknown))}; known: all, {', '.join(ROLES)}")
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class DrainStats:
    relayed: int
    translated: int
    projected: int


async def ingest_bytes(
    hub: Hub, system: str, payload: bytes, *, message_id: str, transport: str, metadata: dict[str, str]
) -> StoreOutcome:
    """Store one inbound message durably. Raises NotStored when the archive cannot commit it.

    The source's dedup rule (hub.ingest.source_keys) applies whatever the transport: an HL7 message
    already received (by MLLP, in another file, over HTTP) comes back as a duplicate.
    """
    # Imported here: it reads HL7 (adapters.his), which a process that never stores (the projector
    # child of `hub serve`) has no need to load; after the first call this is a dict lookup.
    from hub.ingest.source_keys import source_keys  # noqa: PLC0415

    worker = hub.worker(system)  # unknown system: refuse before storing anything
    if len(payload) > hub.settings.max_file_bytes:
        raise NotStored(
            f"{metadata.get('filename', message_id)}: {len(payload):,} bytes is over the limit of "
            f"{hub.settings.max_file_bytes:,} (HUB_MAX_FILE_BYTES)"
        )
    outcome = await hub.archive.store(
        InboundMessage(
            system=system,
            payload=payload,
            transport=transport,
            message_id=message_id,
            site=hub.settings.site,
            metadata=metadata,
        ),
        keys=await asyncio.to_thread(
            source_keys, system, payload, getattr(worker.mappings.current(), "encoding", None)
        ),
    )
    fault_point("ingest.after_store")
    logger.info(
        "raw_stored",
        system=system,
        raw_ref=outcome.record.raw_ref,
        duplicate=outcome.duplicate,
        size=outcome.record.size,
        transport=transport,
    )
    return outcome


async def ingest_path(hub: Hub, system: str, path: Path, *, transport: str = "file") -> StoreOutcome:
    data = await asyncio.to_thread(path.read_bytes)
    return await ingest_bytes(
        hub, system, data, message_id=path.name, transport=transport, metadata={"filename": path.name}
    )


async def drain(hub: Hub) -> DrainStats:
    relayed = translated = projected = 0
    while True:
        r = await hub.relay.drain()
        # On Kafka the first poll after a group join can come back empty: look a little longer.
        # On the embedded log what was published is readable at once: one empty poll with no lag
        # is idle, without waiting out a poll timeout (an idle drain costs one poll per consumer).
        kafka = hub.bus.kind == "kafka"
        t = 0
        for worker in hub.workers.values():
            t += await worker.run_until_idle(idle_when_caught_up=not kafka)
        p = 0
        for runner in hub.runners:
            if kafka:
                p += await runner.run_until_idle(idle_polls=3, timeout_s=1.0)
            else:
                p += await runner.run_until_idle(timeout_s=0.2, idle_when_caught_up=True)
        relayed, translated, projected = relayed + r, translated + t, projected + p
        if r == t == p == 0:
            return DrainStats(relayed, translated, projected)


RESTART_MIN_S = 1.0  # first wait before a failed stage runs again; doubles up to RESTART_MAX_S
RESTART_MAX_S = 30.0
HEALTHY_S = 60.0  # a stage that ran this long before failing starts again from RESTART_MIN_S


class _Stage(Protocol):
    async def run_forever(self, stop: asyncio.Event) -> None: ...


async def _supervise(name: str, stage: _Stage, stop: asyncio.Event) -> None:
    """Run `stage` until `stop`; when it fails, reset it and run it again after a growing pause.

    A failure (the read-model database unreachable, a broker gone, a bug) stops only this stage:
    ingest and the API stay up, so senders keep getting answers. The reset drops the stage's
    consumer, so it starts again from what is durable (committed offsets, projection tracking),
    never from positions it read but did not apply.
    """
    delay = RESTART_MIN_S
    while not stop.is_set():
        started = asyncio.get_running_loop().time()
        try:
            await stage.run_forever(stop)
        except Exception:
            if asyncio.get_running_loop().time() - started >= HEALTHY_S:
                delay = RESTART_MIN_S
            logger.exception("stage_failed", stage=name, restart_in_s=delay)
        else:
            return
        close = getattr(stage, "close", None)
        if close is not None:
            try:
                await close()
            except Exception as exc:  # noqa: BLE001 - the store is down; the next run reconnects
                logger.warning("stage_reset_failed", stage=name, error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):  # the timeout is the pause itself
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RESTART_MAX_S)


async def run_forever(hub: Hub, stop: asyncio.Event, roles: frozenset[str] = frozenset(ROLES)) -> None:
    """Every stage of `roles` as its own supervised loop (a failed one restarts alone) until asked to stop."""
    stages: list[tuple[str, _Stage]] = [("relay", hub.relay)] if "ingest" in roles else []
    if "translate" in roles:
        stages += [(f"adapter.{s}", w) for s, w in hub.workers.items()]
    if "project" in roles:
        stages += [(r.group, r) for r in hub.runners]
    if not stages:  # e.g. an api-only process: nothing to run here, but stay up until asked to stop
        await stop.wait()
        return
    tasks = [asyncio.create_task(_supervise(name, stage, stop), name=name) for name, stage in stages]
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
