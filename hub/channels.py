"""Channels: every source system over every transport, as an integrator on call sees them.

A channel is (system, transport): `his` over `mllp` (the MLLP listener), `<system>` over `file`
(its inbox folder, and `hub ingest`), `<system>` over `http` (POST /ingest/<system>, and FHIR
for `fhir`), and `<system>` over `topic` (the raw topic its translator consumes, on Kafka shared
with other nodes). Counts come from the raw archive (hub.ingest.channel_counts: durable, the
same from every process); state from what the running processes report about their listeners
(`hub serve` writes a report every HEARTBEAT_S into the archive, so an API process knows about
the MLLP listener of an ingest process):

- listening: a live process reports the listener up;
- erroring: a live process reports it failing, or messages were dead-lettered in the last
  ERROR_WINDOW (the last error says why);
- stopped: no live process reports it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from hub.errors import BusError
from hub.ingest.channel_counts import ChannelCounts, ListenerReport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from hub.bootstrap import Hub

logger = structlog.get_logger()

HEARTBEAT_S = 10.0
STALE = timedelta(seconds=3 * HEARTBEAT_S)  # a report older than this: its process is gone
ERROR_WINDOW = timedelta(minutes=5)
SPARK_MINUTES = 60
TRANSPORT_ORDER = {"mllp": 0, "file": 1, "http": 2, "topic": 3}


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel's state, counts and last hour (per-minute received and dead-lettered)."""

    system: str
    transport: str
    endpoint: str
    state: str
    state_detail: str | None
    counts: ChannelCounts
    received_per_minute: list[int] = field(default_factory=list)
    dead_lettered_per_minute: list[int] = field(default_factory=list)
    on_topic: int | None = None  # topic channels: records on the raw topic

    @property
    def channel(self) -> str:
        return f"{self.system}.{self.transport}"

    @property
    def rate_per_minute(self) -> float:
        """Received per minute over the last five minutes."""
        return round(sum(self.received_per_minute[-5:]) / 5, 2)


def endpoint_of(hub: Hub, system: str, transport: str) -> str:
    settings = hub.settings
    if transport == "mllp":
        return f"MLLP {settings.mllp_host}:{settings.mllp_port}"
    if transport == "file":
        return f"{settings.inbox_dir}/{system}/"
    if transport == "http":
        return "POST /fhir, /fhir/{type}" if system == "fhir" else f"POST /ingest/{system}"
    if transport == "topic":
        return f"{settings.topic_prefix}raw.{system}.v1"
    return transport


def configured(hub: Hub) -> list[tuple[str, str]]:
    """The channels the hub's configuration opens (whether or not anything arrived on them yet)."""
    out = [("his", "mllp")] if "his" in hub.workers else []
    for system in sorted(hub.workers):
        out += [(system, "file"), (system, "http"), (system, "topic")]
    return out


def served_here(
    hub: Hub, roles: Iterable[str], *, mllp: Callable[[], bool] | None, inbox: bool
) -> list[tuple[str, str, str]]:
    """(system, transport, state) of the listeners this process runs for `roles`."""
    roles = set(roles)
    out: list[tuple[str, str, str]] = []
    if "ingest" in roles and mllp is not None and "his" in hub.workers:
        out.append(("his", "mllp", "listening" if mllp() else "stopped"))
    for system in sorted(hub.workers):
        if "ingest" in roles and inbox:
            out.append((system, "file", "listening"))
        if "api" in roles:
            out.append((system, "http", "listening"))
        if "translate" in roles:
            out.append((system, "topic", "listening"))
    return out


async def report_forever(
    hub: Hub,
    stop: asyncio.Event,
    listeners: Callable[[], list[tuple[str, str, str]]],
    *,
    every_s: float = HEARTBEAT_S,
) -> None:
    """Tell the archive, every `every_s`, which listeners this process runs; `stopped` at the end."""
    node = node_name()
    while True:
        now = datetime.now(UTC)
        stopping = stop.is_set()
        reports = [
            ListenerReport(system, transport, node, "stopped" if stopping else state, None, now)
            for system, transport, state in listeners()
        ]
        try:
            await hub.archive.report_listeners(reports)
        except Exception as exc:  # noqa: BLE001  (a missed heartbeat reads as stopped; never stops serving)
            logger.warning("channel_report_failed", error=f"{type(exc).__name__}: {exc}")
        if stopping:
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            continue


def _state(
    counts: ChannelCounts,
    reports: list[ListenerReport],
    dead_recent: int,
    now: datetime,
    local: str | None,
) -> tuple[str, str | None]:
    live = [r for r in reports if now - r.seen_at <= STALE]
    failing = [r for r in live if r.state == "erroring"]
    if failing:
        return "erroring", failing[-1].detail or f"reported by {failing[-1].node}"
    listening = local == "listening" or any(r.state == "listening" for r in live)
    if listening and dead_recent:
        return "erroring", counts.last_error or f"{dead_recent} dead-lettered in the last 5 minutes"
    if listening:
        return "listening", None
    if live:
        return "stopped", f"stopped on {live[-1].node}"
    last = max((r.seen_at for r in reports), default=None)
    return "stopped", None if last is None else f"last seen {last.isoformat(timespec='seconds')}"


async def _on_topic(hub: Hub, system: str) -> int | None:
    topic = f"{hub.settings.topic_prefix}raw.{system}.v1"
    try:
        return sum((await hub.bus.end_offsets(topic)).values())
    except (BusError, KeyError, ValueError, OSError):
        return None


async def channels(
    hub: Hub, *, local: Mapping[tuple[str, str], str] | None = None, now: datetime | None = None
) -> list[Channel]:
    """Every channel: configured ones and any other the archive has counts for.

    `local`: states of listeners this very process runs (the API answering: its HTTP channels).
    """
    now = now or datetime.now(UTC)
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=SPARK_MINUTES - 1)
    counts, minutes, reports = await asyncio.gather(
        hub.archive.channel_counts(),
        hub.archive.channel_minutes(since),
        hub.archive.channel_listeners(),
    )
    by_key = {(c.system, c.transport): c for c in counts}
    keys = list(dict.fromkeys([*configured(hub), *by_key]))
    series: dict[tuple[str, str], tuple[list[int], list[int]]] = {
        k: ([0] * SPARK_MINUTES, [0] * SPARK_MINUTES) for k in keys
    }
    for m in minutes:
        i = int((m.minute - since).total_seconds() // 60)
        if (m.system, m.transport) in series and 0 <= i < SPARK_MINUTES:
            received, dead = series[m.system, m.transport]
            received[i] += m.received
            dead[i] += m.dead_lettered
    pending = {c.system: 0 for c in counts}
    for c in counts:
        pending[c.system] += c.pending
    out = []
    for system, transport in sorted(keys, key=lambda k: (TRANSPORT_ORDER.get(k[1], 9), k[0])):
        c = by_key.get((system, transport), ChannelCounts(system, transport))
        on_topic = None
        if transport == "topic":
            on_topic = await _on_topic(hub, system)
            c = ChannelCounts(system, transport, pending=pending.get(system, 0))
        received, dead = series[system, transport]
        mine = [r for r in reports if (r.system, r.transport) == (system, transport)]
        dead_recent = sum(dead[-int(ERROR_WINDOW.total_seconds() // 60) :])
        state, detail = _state(c, mine, dead_recent, now, (local or {}).get((system, transport)))
        out.append(
            Channel(
                system,
                transport,
                endpoint_of(hub, system, transport),
                state,
                detail,
                c,
                received,
                dead,
                on_topic,
            )
        )
    return out
