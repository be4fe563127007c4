"""Running the flow: ingest -> archive -> relay -> translators -> projections.

`drain` runs every stage until nothing moves (the CLI's `ingest` and `demo`); `run_forever`
runs them as concurrent loops until asked to stop (`hub serve`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from hub.errors import NotStored
from hub.faults import fault_point
from hub.ports import InboundMessage, StoreOutcome

if TYPE_CHECKING:
    from pathlib import Path

    from hub.bootstrap import Hub

logger = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class DrainStats:
    relayed: int
    translated: int
    projected: int


async def ingest_bytes(
    hub: Hub, system: str, payload: bytes, *, message_id: str, transport: str, metadata: dict[str, str]
) -> StoreOutcome:
    """Store one inbound message durably. Raises NotStored when the archive cannot commit it."""
    hub.worker(system)  # unknown system: refuse before storing anything
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
        )
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
        t = 0
        for worker in hub.workers.values():
            t += await worker.run_until_idle()
        p = 0
        # On Kafka the first poll after a group join can come back empty: look a little longer.
        kafka = hub.bus.kind == "kafka"
        for runner in hub.runners:
            p += await runner.run_until_idle(idle_polls=3 if kafka else 1, timeout_s=1.0 if kafka else 0.2)
        relayed, translated, projected = relayed + r, translated + t, projected + p
        if r == t == p == 0:
            return DrainStats(relayed, translated, projected)


async def run_forever(hub: Hub, stop: asyncio.Event) -> None:
    """Every stage as its own loop; the first one to fail stops the others and re-raises."""
    tasks = [asyncio.create_task(hub.relay.run_forever(stop), name="relay")]
    tasks += [asyncio.create_task(w.run_forever(stop), name=f"adapter.{s}") for s, w in hub.workers.items()]
    tasks += [asyncio.create_task(r.run_forever(stop), name=r.group) for r in hub.runners]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
