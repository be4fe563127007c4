"""What GET /channels and /metrics read from a hub (wired into the API by hub.bootstrap)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from hub.channels import Channel, channels
from hub.delivery.webhooks.log import DeliveryLog
from hub.metrics import OpsSnapshot, OpsSource, disk_bytes
from projections.audit.ledger import chain_heads

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hub.bootstrap import Hub

logger = structlog.get_logger()


def channel_source(hub: Hub) -> Callable[[], Awaitable[list[Channel]]]:
    """The channels as the API process sees them: its own HTTP ingest is listening (it answers)."""

    async def read() -> list[Channel]:
        local = {(system, "http"): "listening" for system in hub.workers}
        return await channels(hub, local=local)

    return read


def _ledger_heads(hub: Hub) -> dict[str, int]:
    try:
        with hub.engine.connect() as conn:
            heads = chain_heads(conn)
    except (DBAPIError, PoolTimeoutError):
        return {}
    out: dict[str, int] = defaultdict(int)
    for (topic, _), head in heads.items():
        out[topic] += head.count
    return dict(out)


def _webhooks(hub: Hub) -> tuple[dict[str, int], int, dict[str, tuple[int, float, float]]]:
    try:
        subs = hub.subscriptions.list(statuses=("active", "paused"))
    except (DBAPIError, PoolTimeoutError):
        return {}, 0, {}
    by_status: dict[str, int] = defaultdict(int)
    failing = 0
    for sub in subs:
        by_status[str(sub.status)] += 1
        failing += sub.consecutive_failures
    return dict(by_status), failing, _webhook_recent(hub)


def _webhook_recent(hub: Hub) -> dict[str, tuple[int, float, float]]:
    try:
        return DeliveryLog(hub.engine).recent(hub.clock.now() - timedelta(hours=1))
    except (DBAPIError, PoolTimeoutError):
        return {}


def _archive_bytes(hub: Hub) -> int | None:
    if hub.settings.archive_url:
        return None  # on PostgreSQL: the database's own metrics (pg_total_relation_size) say it
    path = hub.settings.archive_path
    return disk_bytes(
        *[p for p in (path, path.with_name(path.name + "-wal"), path.parent / "blobs") if p.exists()]
    )


def ops_source(hub: Hub) -> OpsSource:
    """One scrape's durable numbers; a store that cannot answer leaves its families out."""
    read_channels = channel_source(hub)

    async def lag() -> dict[str, int]:
        out: dict[str, int] = {}
        for runner in hub.runners:
            try:
                out[runner.group] = await runner.lag()
            except (DBAPIError, PoolTimeoutError):
                continue
        return out

    async def read() -> OpsSnapshot:
        found, open_letters, lags, heads, hooks, size = await asyncio.gather(
            read_channels(),
            hub.dead_letters.counts(),
            lag(),
            asyncio.to_thread(_ledger_heads, hub),
            asyncio.to_thread(_webhooks, hub),
            asyncio.to_thread(_archive_bytes, hub),
        )
        dead = {system: int(c.get("open", 0)) for system, c in open_letters.items()}
        return OpsSnapshot(
            channels=found,
            dead_letters_open=dead,
            consumer_lag=lags,
            ledger_head=heads,
            archive_bytes=size,
            webhooks=hooks[0],
            webhook_failing=hooks[1],
            webhook_recent=hooks[2],
        )

    return read
