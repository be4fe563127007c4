"""API access: what authentication, event streaming and webhook delivery cost.

- Key check: `GET /assets?limit=1` p50/p99 without keys and with a viewer key (a lookup of the
  key's hash per request), and with a department-scoped key, in-process ASGI client on SQLite.
- Event stream: events/s through `GET /events/stream?from=beginning` (SSE) from the embedded log.
- Webhooks: events/s delivered, one subscription to a local HTTP receiver that answers 204,
  at least once and in order per partition (commit after each 2xx).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from bench.wiring import api_client
from hub.auth.keys import KeyStore
from hub.auth.roles import Role
from hub.bus.embedded import EmbeddedBus
from hub.delivery.webhooks import SubscriptionStore, Tuning, WebhookService, subscription_key
from hub.ports import event_out_record
from projections.runtime.db import make_engine
from schemas.assets import AssetStatus, AssetStatusChanged, StatusChangedPayload
from schemas.envelope import Source
from topics.catalogue import BY_NAME

if TYPE_CHECKING:
    from bench.report import Report
    from schemas.envelope import EventBase

REQUESTS = 2_000
STREAM_EVENTS = 50_000
WEBHOOK_EVENTS = 5_000
TOPIC = "canonical.asset.v1"
_SOURCE = Source(system="hrp", site="bench", message_id="bench", adapter_version="bench")


def _events(n: int) -> list[EventBase]:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return [
        AssetStatusChanged(
            event_id=uuid.uuid4(),
            occurred_at=now,
            recorded_at=now,
            source=_SOURCE,
            subject=f"AST-{i % 500:05d}",
            payload=StatusChangedPayload(status=AssetStatus.IN_USE),
        )
        for i in range(n)
    ]


async def _publish(bus: EmbeddedBus, events: list[EventBase]) -> None:
    await bus.ensure_topics([BY_NAME[TOPIC]])
    for start in range(0, len(events), 5_000):
        await bus.publish(TOPIC, [event_out_record(e) for e in events[start : start + 5_000]])


async def _latency(auth: str, engine_url: str, headers: dict[str, str]) -> tuple[float, float]:
    async with api_client(engine_url, auth=auth) as (_, client):
        for _ in range(50):
            (await client.get("/assets?limit=1", headers=headers)).raise_for_status()
        samples = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            response = await client.get("/assets?limit=1", headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


async def _key_check(report: Report, tmp: Path) -> None:
    url = f"sqlite:///{tmp / 'keys.db'}"
    keys = KeyStore(make_engine(url))
    _, viewer = keys.create(Role.VIEWER)
    _, ward = keys.create(Role.VIEWER, department="0301")
    where = f"SQLite, in-process ASGI client, {REQUESTS} requests, empty registry"
    cases: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("no keys (HUB_AUTH=off)", "off", {}),
        ("viewer key", "keys", {"Authorization": f"Bearer {viewer}"}),
        ("department-scoped key", "keys", {"Authorization": f"Bearer {ward}"}),
    )
    for label, auth, headers in cases:
        p50, p99 = await _latency(auth, url, headers)
        report.add("api", f"GET /assets?limit=1, {label}, p50", p50, "ms", note=where)
        report.add("api", f"GET /assets?limit=1, {label}, p99", p99, "ms", note=where)


async def _stream(report: Report, tmp: Path) -> None:
    async def keep(_: EventBase) -> None:
        return None

    url = f"sqlite:///{tmp / 'stream.db'}"
    async with api_client(url, http_timeout_s=600, access_log=keep) as (hub, client):
        await _publish(hub.bus, _events(STREAM_EVENTS))
        started = time.perf_counter()
        response = await client.get(
            "/events/stream", params={"from": "beginning", "topics": TOPIC, "limit": str(STREAM_EVENTS)}
        )
        elapsed = time.perf_counter() - started
        got = response.text.count("\nevent: ")
        if got != STREAM_EVENTS:
            raise RuntimeError(f"stream gave {got} events, not {STREAM_EVENTS}")
        report.add(
            "api",
            "GET /events/stream (SSE) from the embedded log",
            STREAM_EVENTS / elapsed,
            "events/s",
            note=f"{STREAM_EVENTS:,} events, one client, in-process ASGI (no socket)",
        )


class _Receiver(BaseHTTPRequestHandler):
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with _Receiver.lock:
            _Receiver.count += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002
        return


async def _webhooks(report: Report, tmp: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bus = EmbeddedBus(tmp / "hooks.db")
    await bus.start()
    engine = make_engine(f"sqlite:///{tmp / 'hooks-rm.db'}")
    stop = asyncio.Event()
    try:
        await bus.ensure_topics([BY_NAME[TOPIC]])
        store = SubscriptionStore(engine, subscription_key(b"bench"))
        store.create(
            url=f"http://127.0.0.1:{server.server_address[1]}/hook",
            topics=[TOPIC],
            types=[],
            description="bench",
            created_by="bench",
            start_offsets={TOPIC: {str(p): o for p, o in (await bus.end_offsets(TOPIC)).items()}},
        )
        await _publish(bus, _events(WEBHOOK_EVENTS))
        _Receiver.count = 0
        started = time.perf_counter()
        service = asyncio.create_task(WebhookService(store, bus, tuning=Tuning(reload_s=0.2)).run(stop))
        while _Receiver.count < WEBHOOK_EVENTS:
            if service.done():
                service.result()
                raise RuntimeError("webhook service ended early")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        report.add(
            "api",
            "webhook delivery, one subscription, local receiver (204)",
            WEBHOOK_EVENTS / elapsed,
            "events/s",
            note=f"{WEBHOOK_EVENTS:,} events, signed, commit after each 2xx; incl. service start",
        )
        stop.set()
        await service
    finally:
        server.shutdown()
        engine.dispose()
        await bus.close()


async def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-access-") as name:
        tmp = Path(name)
        await _key_check(report, tmp)
        await _stream(report, tmp)
        await _webhooks(report, tmp)
