"""Webhook subscriptions end to end: API -> bus -> delivery worker -> a real HTTP receiver.

The receiver is a stdlib HTTP server on a free port in a thread; it records every POST and can be
told to answer 500 for a while. Events are published to the embedded bus as the pipeline would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from hub.auth.keys import KeyStore
from hub.auth.roles import Role
from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus
from hub.delivery.webhooks import (
    Backoff,
    SubscriptionStore,
    Tuning,
    WebhookService,
    subscription_key,
    verify_signature,
)
from hub.ports import event_out_record
from projections.runtime.db import make_engine
from schemas.audit import AccessRecorded
from schemas.envelope import EventBase
from tests.e2e.conftest import REPO, Served, wired_hub
from tests.unit.schemas.examples import example_event
from topics.catalogue import BY_NAME

ASSETS = "canonical.asset.v1"
OA = REPO / "examples" / "oa" / "工单导出_2024Q2.json"
FAST = Tuning(
    reload_s=0.2,
    poll_s=0.2,
    batch=100,
    hold_poll_s=0.2,
    timeout_s=5,
    backoff=Backoff(0.05, 0.4),
    stop_grace_s=5,
)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        return str(json.loads(self.body)["event_id"])


@dataclass
class Receiver:
    """What the receiving application saw: accepted deliveries, and how many it refused."""

    url: str = ""
    accepted: list[Delivery] = field(default_factory=list)
    refused: int = 0
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [d.event_id for d in self.accepted]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with got.lock:
                failing = got.fail_next > 0
                if failing:
                    got.fail_next -= 1
                    got.refused += 1
                else:
                    got.accepted.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(500 if failing else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:  # keep the test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@dataclass
class Env:
    http: httpx.AsyncClient
    bus: EmbeddedBus
    tokens: dict[str, str]
    store: SubscriptionStore
    start_service: Callable[[httpx.AsyncBaseTransport | None], None]
    stop_service: Callable[[], asyncio.Task[None]]
    reads: list[EventBase]
    keys: KeyStore
    db_url: str

    def auth(self, who: str = "app") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def publish(self, *events: EventBase) -> None:
        for event in events:
            await self.bus.publish(ASSETS, [event_out_record(event)])


def asset_event(event_type: str, subject: str) -> EventBase:
    return example_event(event_type).model_copy(update={"event_id": uuid.uuid4(), "subject": subject})


async def wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


@pytest.fixture
async def env(tmp_path: Path, db_url: str) -> AsyncIterator[Env]:
    """The real wiring (keys required) over `db_url`, a fast-failing-over bus, reads kept here."""
    bus = EmbeddedBus(tmp_path / "bus", heartbeat_interval_s=0.2, session_timeout_s=2)
    reads: list[EventBase] = []

    async def record(event: EventBase) -> None:
        reads.append(event)

    settings = {"db_url": db_url, "webhook_allow": ["127.0.0.1"]}  # the test receivers are local
    async with wired_hub(tmp_path / "hub", settings=settings, bus=bus, access_log=record) as w:
        keys = w.hub.keys
        tokens = {
            "app": keys.create(Role.APP)[1],
            "other_app": keys.create(Role.APP)[1],
            "admin": keys.create(Role.ADMIN)[1],
            "viewer": keys.create(Role.VIEWER)[1],
            "ward_app": keys.create(Role.APP, department="0301")[1],
        }
        store = w.hub.subscriptions
        running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

        def start_service(transport: httpx.AsyncBaseTransport | None = None) -> None:
            stop = asyncio.Event()
            service = WebhookService(store, bus, tuning=FAST, transport=transport)
            running.append((stop, asyncio.create_task(service.run(stop))))

        def stop_service() -> asyncio.Task[None]:
            stop, task = running.pop()
            stop.set()
            return task

        start_service(None)
        yield Env(w.http, bus, tokens, store, start_service, stop_service, reads, keys, db_url)
        while running:
            await stop_service()


async def subscribe(env: Env, receiver: Receiver, **extra: object) -> dict[str, object]:
    answer = await env.http.post(
        "/subscriptions",
        json={
            "url": receiver.url,
            "topics": [ASSETS],
            "types": ["asset.relocated", "asset.status_changed"],
            **extra,
        },
        headers=env.auth(),
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


class TestDelivery:
    async def test_signed_in_order_from_creation_on_and_retried_without_gap(
        self, env: Env, receiver: Receiver
    ) -> None:
        """Only what follows creation and matches the types arrives, signed, in order; 500s are retried."""
        await env.publish(asset_event("asset.relocated", "A-1"))  # before the subscription: never sent
        created = await subscribe(env, receiver)
        secret = str(created["secret"])
        wanted: list[EventBase] = []
        for i in range(12):
            subject = ("A-1", "A-2")[i % 2]
            kind = ("asset.relocated", "asset.status_changed", "asset.registered")[i % 3]
            event = asset_event(kind, subject)
            await env.publish(event)
            if kind != "asset.registered":
                wanted.append(event)
        await wait_for(lambda: len(receiver.ids()) >= len(wanted))

        receiver.fail_next = 3
        later = [asset_event("asset.relocated", ("A-1", "A-2")[i % 2]) for i in range(6)]
        await env.publish(*later)
        wanted += later
        await wait_for(lambda: len(receiver.ids()) >= len(wanted))
        await asyncio.sleep(0.5)  # anything extra (a repeat) would arrive by now

        assert receiver.refused == 3
        by_id = {str(e.event_id): e for e in wanted}
        assert sorted(receiver.ids()) == sorted(by_id)  # each once: no loss, no gap, no repeat
        for subject in ("A-1", "A-2"):  # one subject = one partition: publish order kept
            sent = [str(e.event_id) for e in wanted if e.subject == subject]
            assert [i for i in receiver.ids() if by_id[i].subject == subject] == sent
        for d in receiver.accepted:
            assert verify_signature(secret, d.body, d.headers["x-hub-signature-256"])
            assert d.headers["content-type"] == "application/json"
            assert d.headers["x-hub-event-type"] == by_id[d.event_id].type
            assert d.headers["x-hub-event-id"] == d.event_id
            assert uuid.UUID(d.headers["x-hub-delivery"])
        assert len({d.headers["x-hub-delivery"] for d in receiver.accepted}) == len(receiver.accepted)

        state = (await env.http.get(f"/subscriptions/{created['id']}", headers=env.auth())).json()
        assert state["delivery"]["consecutive_failures"] == 0
        assert state["delivery"]["last_error"] == "HTTP 500 Internal Server Error"
        assert state["delivery"]["last_event_id"] in by_id

    async def test_failures_are_recorded_while_the_receiver_fails(self, env: Env, receiver: Receiver) -> None:
        """A receiver that keeps failing shows a growing failure count and its last error; nothing is skipped."""
        created = await subscribe(env, receiver)
        receiver.fail_next = 10_000
        first, second = asset_event("asset.relocated", "A-1"), asset_event("asset.relocated", "A-1")
        await env.publish(first, second)
        url = f"/subscriptions/{created['id']}"

        async def failures() -> int:
            return int(
                (await env.http.get(url, headers=env.auth())).json()["delivery"]["consecutive_failures"]
            )

        deadline = time.monotonic() + 20
        while await failures() < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        receiver.fail_next = 0
        await wait_for(lambda: len(receiver.ids()) == 2)
        assert receiver.ids() == [str(first.event_id), str(second.event_id)]
        # The receiver sees the delivery a moment before the hub records its success.
        deadline = time.monotonic() + 20
        while await failures() != 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

    async def test_pause_stops_resume_continues_delete_ends(self, env: Env, receiver: Receiver) -> None:
        """Paused: nothing arrives; resumed: what was published meanwhile arrives; deleted: nothing more."""
        created = await subscribe(env, receiver)
        url = f"/subscriptions/{created['id']}"
        one = asset_event("asset.relocated", "A-1")
        await env.publish(one)
        await wait_for(lambda: receiver.ids() == [str(one.event_id)])

        paused = await env.http.patch(url, json={"status": "paused"}, headers=env.auth())
        assert paused.json()["status"] == "paused"
        await asyncio.sleep(1.0)  # the workers notice within reload_s
        two = asset_event("asset.relocated", "A-1")
        await env.publish(two)
        await asyncio.sleep(1.5)
        assert receiver.ids() == [str(one.event_id)]

        resumed = await env.http.patch(url, json={"status": "active"}, headers=env.auth())
        assert resumed.json()["status"] == "active"
        await wait_for(lambda: receiver.ids() == [str(one.event_id), str(two.event_id)])

        assert (await env.http.delete(url, headers=env.auth())).status_code == 204
        assert (await env.http.get(url, headers=env.auth())).status_code == 404
        await asyncio.sleep(1.0)
        await env.publish(asset_event("asset.relocated", "A-1"))
        await asyncio.sleep(1.5)
        assert receiver.ids() == [str(one.event_id), str(two.event_id)]

    async def test_a_restart_neither_skips_nor_repeats(self, env: Env, receiver: Receiver) -> None:
        """Stopping the service and starting a new one delivers exactly what was published in between."""
        await subscribe(env, receiver)
        before = asset_event("asset.relocated", "A-1")
        await env.publish(before)
        await wait_for(lambda: len(receiver.ids()) == 1)
        await env.stop_service()
        during = [asset_event("asset.relocated", f"A-{i}") for i in range(4)]
        await env.publish(*during)
        env.start_service(None)
        await wait_for(lambda: len(receiver.ids()) == 5)
        await asyncio.sleep(0.5)
        assert sorted(receiver.ids()) == sorted([str(before.event_id), *(str(e.event_id) for e in during)])


class Counting(httpx.AsyncBaseTransport):
    """A real HTTP transport that counts the requests one node sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class TestSeveralNodes:
    async def test_two_nodes_share_the_partitions_and_keep_each_subject_in_order(
        self, env: Env, receiver: Receiver
    ) -> None:
        """Two services in one consumer group: both deliver, every event arrives, per-subject order holds."""
        await subscribe(env, receiver)
        await env.stop_service()
        nodes = [Counting(), Counting()]
        for node in nodes:
            env.start_service(node)
        await asyncio.sleep(1.5)  # both join the group and settle the assignment
        events = [asset_event("asset.relocated", f"A-{i % 24}") for i in range(72)]
        await env.publish(*events)
        await wait_for(lambda: len(set(receiver.ids())) == len(events))
        ids = receiver.ids()
        assert set(ids) == {str(e.event_id) for e in events}
        firsts = list(dict.fromkeys(ids))
        for subject in {e.subject for e in events}:
            sent = [str(e.event_id) for e in events if e.subject == subject]
            assert [i for i in firsts if i in set(sent)] == sent
        assert all(node.sent > 0 for node in nodes), [node.sent for node in nodes]


class TestSubscriptionApi:
    async def test_secret_shown_once_and_lists_are_per_key(self, env: Env, receiver: Receiver) -> None:
        """The secret is only in the creation answer; another app key sees nothing; admin sees all."""
        created = await subscribe(env, receiver, description="dispatch board")
        url = f"/subscriptions/{created['id']}"
        assert str(created["secret"]).startswith("whsec_")
        listed = (await env.http.get("/subscriptions", headers=env.auth())).json()["items"]
        assert [s["id"] for s in listed] == [created["id"]]
        assert "secret" not in listed[0]
        assert "secret" not in (await env.http.get(url, headers=env.auth())).json()
        assert (await env.http.get("/subscriptions", headers=env.auth("other_app"))).json()["items"] == []
        assert (await env.http.get(url, headers=env.auth("other_app"))).status_code == 404
        assert (await env.http.delete(url, headers=env.auth("other_app"))).status_code == 404
        assert len((await env.http.get("/subscriptions", headers=env.auth("admin"))).json()["items"]) == 1

    async def test_topics_follow_the_types_when_not_given(self, env: Env, receiver: Receiver) -> None:
        answer = await env.http.post(
            "/subscriptions", json={"url": receiver.url, "types": ["workorder.*"]}, headers=env.auth()
        )
        assert answer.status_code == 201
        assert answer.json()["topics"] == ["canonical.workorder.v1", "derived.workorder.v1"]

    async def test_creation_is_recorded_on_the_audit_ledger_first(
        self, env: Env, receiver: Receiver, tmp_path: Path
    ) -> None:
        """Who subscribed what is on the ledger; when the ledger cannot record it, nothing is created."""
        created = await subscribe(env, receiver)
        [read] = [r for r in env.reads if isinstance(r, AccessRecorded)]
        assert (read.payload.action, read.payload.resource) == (
            "subscriptions.create",
            f"{created['id']}:{ASSETS}",
        )

        async def unavailable(_: EventBase) -> None:
            raise OSError("ledger down")

        # A second API node over the same database, whose ledger is down.
        settings = {"db_url": env.db_url, "webhook_allow": ["127.0.0.1"]}
        async with wired_hub(tmp_path / "node2", settings=settings, access_log=unavailable) as node:
            refused = await node.http.post("/subscriptions", json={"url": receiver.url}, headers=env.auth())
        assert refused.status_code == 503
        assert [s.id for s in env.store.list()] == [created["id"]]

    @pytest.mark.parametrize(
        "body",
        [
            {"url": "ftp://receiver.example/hook"},
            {"url": "receiver.example/hook"},
            {"url": "https://user:pw@receiver.example/hook"},
            {"url": "http://[::1/hook"},
            {"url": "http://receiver.example:99999/hook"},
            {"url": "https://receiver.example/hook", "topics": ["raw.his.v1"]},
            {"url": "https://receiver.example/hook", "types": ["asset.nothing_like_it"]},
            {"url": "https://receiver.example/hook", "topics": [ASSETS], "types": ["inventory.*"]},
            {"url": "https://receiver.example/hook", "secret": "mine"},
        ],
    )
    async def test_invalid_subscriptions_are_refused(self, env: Env, body: dict[str, object]) -> None:
        assert (await env.http.post("/subscriptions", json=body, headers=env.auth())).status_code == 422

    async def test_who_may_subscribe(self, env: Env, receiver: Receiver) -> None:
        """No key: 401; viewer: 403; a department-scoped key: 403, as for /events/stream."""
        body = {"url": receiver.url}
        assert (await env.http.post("/subscriptions", json=body)).status_code == 401
        assert (
            await env.http.post("/subscriptions", json=body, headers=env.auth("viewer"))
        ).status_code == 403
        scoped = await env.http.post("/subscriptions", json=body, headers=env.auth("ward_app"))
        assert scoped.status_code == 403
        assert (await env.http.get("/subscriptions", headers=env.auth("ward_app"))).status_code == 403


@pytest.mark.slow
def test_hub_serve_delivers_what_an_ingest_produces(served: Served, receiver: Receiver) -> None:
    """The real `hub serve`: subscribe, ingest an OA export, and its work-order events arrive signed."""
    served.env["HUB_WEBHOOK_ALLOW"] = '["127.0.0.1"]'  # the receiver is local
    served.start()
    created = httpx.post(
        f"{served.url}/subscriptions", json={"url": receiver.url, "types": ["workorder.*"]}, timeout=30
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    ingested = httpx.post(
        f"{served.url}/ingest/oa", params={"filename": OA.name}, content=OA.read_bytes(), timeout=60
    )
    assert ingested.status_code == 202, ingested.text
    deadline = time.monotonic() + 90
    seen = -1
    while len(receiver.ids()) != seen or not seen:  # until deliveries stop growing
        assert time.monotonic() < deadline, served.log.read_text()[-3000:]
        seen = len(receiver.ids())
        time.sleep(3)
    ids = receiver.ids()
    assert len(ids) == len(set(ids))
    for d in receiver.accepted:
        assert verify_signature(secret, d.body, d.headers["x-hub-signature-256"])
        assert d.headers["x-hub-event-type"].startswith("workorder.")
    state = httpx.get(f"{served.url}/subscriptions/{created.json()['id']}", timeout=30).json()
    assert state["delivery"]["last_event_id"] == ids[-1]
    assert state["delivery"]["consecutive_failures"] == 0


@pytest.mark.kafka
@pytest.mark.slow
async def test_on_kafka_events_arrive_in_order_after_refusals(
    kafka_bootstrap: str, receiver: Receiver, tmp_path: Path
) -> None:
    """The same worker over the Kafka bus: from the start offsets on, retried, per-subject order kept.

    Records are published one per batch: the test broker's end offsets are only right then
    (TEST-BROKER.md), and the subscription's start is taken from them.
    """
    prefix = f"wh{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}{ASSETS}"
    bus = KafkaBus(
        kafka_bootstrap, client_id="webhooks", session_timeout_ms=6_000, heartbeat_interval_ms=1_000
    )
    await bus.start()
    engine = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
    stop = asyncio.Event()
    try:
        await bus.ensure_topics([BY_NAME[ASSETS]], prefix=prefix)
        await bus.publish(
            topic, [event_out_record(asset_event("asset.relocated", "A-0"))]
        )  # before: not sent
        store = SubscriptionStore(engine, subscription_key(b"kafka"))
        ends = await bus.end_offsets(topic)
        sub, secret = store.create(
            url=receiver.url,
            topics=[ASSETS],
            types=[],
            description="",
            created_by="test",
            start_offsets={ASSETS: {str(p): o for p, o in ends.items()}},
        )
        receiver.fail_next = 2
        service = asyncio.create_task(WebhookService(store, bus, prefix=prefix, tuning=FAST).run(stop))
        events = [asset_event("asset.relocated", f"A-{i % 4}") for i in range(8)]
        for event in events:
            await bus.publish(topic, [event_out_record(event)])
        await wait_for(lambda: len(receiver.ids()) >= len(events), timeout_s=120)
        stop.set()
        await service
        ids = receiver.ids()
        assert receiver.refused == 2
        assert set(ids) == {str(e.event_id) for e in events}
        firsts = list(dict.fromkeys(ids))
        for subject in {e.subject for e in events}:
            sent = [str(e.event_id) for e in events if e.subject == subject]
            assert [i for i in firsts if i in set(sent)] == sent
        assert all(
            verify_signature(secret, d.body, d.headers["x-hub-signature-256"]) for d in receiver.accepted
        )
        state = store.get(sub.id)
        assert state is not None
        assert (state.consecutive_failures, state.last_error) == (0, "HTTP 500 Internal Server Error")
    finally:
        stop.set()
        await bus.close()
        engine.dispose()


async def test_an_internal_target_is_refused_unless_allowed(tmp_path: Path) -> None:
    """POST /subscriptions to a loopback or metadata address: 422 naming HUB_WEBHOOK_ALLOW; allowed: 201."""
    async with wired_hub(tmp_path / "closed") as w:
        for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/"):
            refused = await w.http.post("/subscriptions", json={"url": url}, headers=w.auth(Role.ADMIN))
            assert refused.status_code == 422, refused.text
            assert "HUB_WEBHOOK_ALLOW" in refused.json()["detail"]
        assert w.hub.subscriptions.list() == []
    async with wired_hub(tmp_path / "open", settings={"webhook_allow": ["127.0.0.0/8"]}) as w:
        created = await w.http.post(
            "/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=w.auth(Role.ADMIN)
        )
        assert created.status_code == 201, created.text
