"""Webhooks an operator can trust: the delivery log, replay from a time, secret rotation.

Real wiring (build_hub + the API, keys required), the embedded bus, and a real HTTP receiver on
loopback (tests.e2e.test_api_subscriptions's); the hub's clock is a test clock, so the rotation's
overlap ends when the test says, not after a wait.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.auth.roles import Role
from hub.bus.embedded import EmbeddedBus
from hub.delivery.webhooks import Tuning, WebhookService, verify_signature
from hub.ports import event_out_record
from schemas.envelope import EventBase
from tests.e2e import test_api_subscriptions as subscriptions
from tests.e2e.conftest import wired_hub
from tests.e2e.test_api_subscriptions import FAST, Receiver
from tests.unit.schemas.examples import example_event

ASSETS = "canonical.asset.v1"
receiver = subscriptions.receiver  # the loopback HTTP receiver fixture, shared


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class Env:
    http: httpx.AsyncClient
    bus: EmbeddedBus
    token: str
    clock: Clock

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def publish(self, *events: EventBase) -> None:
        for event in events:
            await self.bus.publish(ASSETS, [event_out_record(event)])

    async def subscribe(self, target: Receiver) -> dict[str, str]:
        answer = await self.http.post(
            "/subscriptions",
            json={"url": target.url, "topics": [ASSETS], "types": ["asset.relocated"]},
            headers=self.auth,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
async def env(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    """The real wiring over `db_url` (SQLite, then PostgreSQL), delivery tuned by the test's
    `tuning` parameter (default FAST)."""
    tuning: Tuning = getattr(request, "param", FAST)
    bus = EmbeddedBus(tmp_path / "bus", heartbeat_interval_s=0.2, session_timeout_s=2)
    clock = Clock(datetime(2024, 6, 12, 2, 0, tzinfo=UTC))
    settings = {"webhook_allow": ["127.0.0.1"], "db_url": db_url}
    async with wired_hub(tmp_path / "hub", settings=settings, bus=bus, clock=clock) as w:
        token = w.hub.keys.create(Role.APP)[1]
        service = WebhookService(w.hub.subscriptions, bus, tuning=tuning, clock=clock)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        yield Env(w.http, bus, token, clock)
        stop.set()
        await task


def relocated(subject: str, recorded_at: datetime | None = None) -> EventBase:
    update: dict[str, object] = {"event_id": uuid.uuid4(), "subject": subject}
    if recorded_at is not None:
        update["recorded_at"] = recorded_at
    return example_event("asset.relocated").model_copy(update=update)


async def until(condition: Callable[[], object], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


class TestDeliveryLog:
    async def test_every_attempt_is_logged_with_status_latency_and_error(
        self, env: Env, receiver: Receiver
    ) -> None:
        """A receiver failing twice then accepting: three rows, attempts 1-3, the 500s with their error."""
        sub = await env.subscribe(receiver)
        receiver.fail_next = 2
        event = relocated("A-1")
        await env.publish(event)
        url = f"/subscriptions/{sub['id']}/deliveries"
        page: dict[str, object] = {}

        async def logged() -> int:
            nonlocal page
            page = (await env.http.get(url, headers=env.auth)).json()
            return int(page["total"])  # type: ignore[call-overload]

        deadline = time.monotonic() + 20
        while await logged() < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        rows = list(reversed(page["items"]))  # type: ignore[call-overload]
        assert [(r["attempt"], r["status_code"], r["outcome"]) for r in rows] == [
            (1, 500, "failed"),
            (2, 500, "failed"),
            (3, 204, "delivered"),
        ]
        assert {r["event_id"] for r in rows} == {str(event.event_id)}
        assert [r["error"] for r in rows] == ["HTTP 500 Internal Server Error"] * 2 + [None]
        assert all(r["latency_ms"] >= 0 and r["topic"] == ASSETS and r["replay_id"] is None for r in rows)
        paged = (await env.http.get(url, params={"limit": 1, "offset": 2}, headers=env.auth)).json()
        assert [r["attempt"] for r in paged["items"]] == [1]
        other = env.http.get(url, headers={"Authorization": "Bearer nope"})
        assert (await other).status_code == 401
        # /metrics reads the same log: the last hour's attempts by outcome, and their latency.
        scraped = (await env.http.get("/metrics")).text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(scraped)
            for s in family.samples
            if s.name.startswith("hub_webhook_delivery_")
        }
        attempts = "hub_webhook_delivery_attempts_last_hour"
        assert samples[(attempts, (("outcome", "delivered"),))] == 1
        assert samples[(attempts, (("outcome", "failed"),))] == 2
        slowest = samples[
            ("hub_webhook_delivery_latency_seconds_last_hour", (("outcome", "failed"), ("stat", "max")))
        ]
        assert slowest == max(r["latency_ms"] for r in rows if r["outcome"] == "failed") / 1000


class TestReplay:
    async def test_replay_from_a_time_redelivers_exactly_the_events_after_it(
        self, env: Env, receiver: Receiver
    ) -> None:
        """Three events recorded at 10:00, 11:00 and 12:00; a replay from 10:30 sends the last two again."""
        sub = await env.subscribe(receiver)
        day = datetime(2024, 6, 12, tzinfo=UTC)
        events = [relocated(s, day + timedelta(hours=h)) for s, h in (("A-1", 10), ("A-2", 11), ("A-1", 12))]
        await env.publish(*events)
        await until(lambda: len(receiver.ids()) == 3)

        answer = await env.http.post(
            f"/subscriptions/{sub['id']}/replay", params={"from": "2024-06-12T10:30:00Z"}, headers=env.auth
        )
        assert answer.status_code == 202, answer.text
        replay = answer.json()
        assert replay["from"].startswith("2024-06-12T10:30:00")
        await until(lambda: len(receiver.ids()) == 5)
        await asyncio.sleep(0.5)  # a third replayed event, if any, would have arrived by now
        again = receiver.accepted[3:]
        assert sorted(d.event_id for d in again) == sorted(str(e.event_id) for e in events[1:])
        assert {d.headers["x-hub-replay"] for d in again} == {replay["id"]}
        assert "x-hub-replay" not in receiver.accepted[0].headers

        async def state() -> dict[str, object]:
            items = (await env.http.get(f"/subscriptions/{sub['id']}/replays", headers=env.auth)).json()
            return items["items"][0]  # type: ignore[no-any-return]

        deadline = time.monotonic() + 20
        while (done := await state())["state"] != "done":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert (done["delivered"], done["remaining"]) == (2, 0)
        log = (await env.http.get(f"/subscriptions/{sub['id']}/deliveries", headers=env.auth)).json()
        assert sum(r["replay_id"] == replay["id"] for r in log["items"]) == 2


class TestRotation:
    async def test_both_secrets_sign_during_the_overlap_and_only_the_new_one_after(
        self, env: Env, receiver: Receiver
    ) -> None:
        """Before: the old secret; during the overlap: either verifies; after it: only the new one."""
        sub = await env.subscribe(receiver)
        old = sub["secret"]
        await env.publish(relocated("A-1"))
        await until(lambda: len(receiver.ids()) == 1)

        rotated = await env.http.post(
            f"/subscriptions/{sub['id']}/rotate-secret", params={"overlap_hours": 1}, headers=env.auth
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old
        assert rotated.json()["previous_valid_until"].startswith("2024-06-12T03:00:00")
        await env.publish(relocated("A-1"))
        await until(lambda: len(receiver.ids()) == 2)

        env.clock.at += timedelta(hours=1, seconds=1)  # the overlap is over
        await env.publish(relocated("A-1"))
        await until(lambda: len(receiver.ids()) == 3)

        before, during, after = receiver.accepted
        header = "x-hub-signature-256"
        assert verify_signature(old, before.body, before.headers[header])
        assert not verify_signature(new, before.body, before.headers[header])
        assert verify_signature(old, during.body, during.headers[header])
        assert verify_signature(new, during.body, during.headers[header])
        assert during.headers[header].count("sha256=") == 2
        assert verify_signature(new, after.body, after.headers[header])
        assert not verify_signature(old, after.body, after.headers[header])
        assert after.headers[header].count("sha256=") == 1


class TestTuning:
    @pytest.mark.parametrize("env", [replace(FAST, concurrency=4)], indirect=True)
    async def test_partitions_in_parallel_keep_each_subjects_order(
        self, env: Env, receiver: Receiver
    ) -> None:
        """With four partitions POSTed to at once and 500s on the way, each subject still arrives in order."""
        await env.subscribe(receiver)
        receiver.fail_next = 3
        subjects = [f"A-{i}" for i in range(8)]
        events = [relocated(subjects[i % 8]) for i in range(40)]
        await env.publish(*events)
        await until(lambda: len(receiver.ids()) >= 40)
        await asyncio.sleep(0.3)  # a repeat, if any, would have arrived by now
        by_id = {str(e.event_id): e for e in events}
        assert sorted(receiver.ids()) == sorted(by_id)
        for subject in subjects:
            sent = [str(e.event_id) for e in events if e.subject == subject]
            assert [i for i in receiver.ids() if by_id[i].subject == subject] == sent

    @pytest.mark.parametrize("env", [replace(FAST, max_attempts=3)], indirect=True)
    async def test_a_subscription_pauses_after_max_attempts_and_skips_nothing(
        self, env: Env, receiver: Receiver
    ) -> None:
        """Three refusals in a row pause it with the reason; resumed, the refused event comes first."""
        sub = await env.subscribe(receiver)
        url = f"/subscriptions/{sub['id']}"
        receiver.fail_next = 10_000
        first, second = relocated("A-1"), relocated("A-1")
        await env.publish(first, second)

        async def state() -> dict[str, object]:
            return (await env.http.get(url, headers=env.auth)).json()  # type: ignore[no-any-return]

        deadline = time.monotonic() + 20
        while (now := await state())["status"] != "paused":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert str(now["delivery"]["last_error"]).startswith("paused after 3 failed attempts")  # type: ignore[index]
        assert receiver.refused == 3
        receiver.fail_next = 0
        resumed = await env.http.patch(url, json={"status": "active"}, headers=env.auth)
        assert resumed.status_code == 200
        await until(lambda: len(receiver.ids()) == 2)
        assert receiver.ids() == [str(first.event_id), str(second.event_id)]
