"""Webhooks: the signature, the retry backoff, the type filter, and the subscription store."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from hub.delivery.webhooks import (
    Backoff,
    Subscription,
    SubscriptionStore,
    TypeFilter,
    post_event,
    signature,
    subscription_key,
    subscriptions_table,
    verify_signature,
)
from hub.errors import ArchiveError
from hub.ports import BusRecord
from projections.runtime.db import make_engine

KEY = subscription_key(b"test-secret")


class TestSignature:
    @given(secret=st.text(min_size=1, max_size=80), body=st.binary(max_size=2000))
    def test_is_the_hex_hmac_sha256_of_the_body(self, secret: str, body: bytes) -> None:
        """The header is what a receiver computes with the standard library."""
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert signature(secret, body) == f"sha256={expected}"
        assert verify_signature(secret, body, signature(secret, body))

    @given(
        secret=st.text(min_size=1, max_size=40), body=st.binary(min_size=1, max_size=500), flip=st.integers(0)
    )
    def test_an_altered_body_does_not_verify(self, secret: str, body: bytes, flip: int) -> None:
        """Changing any byte of the body breaks the signature."""
        i = flip % len(body)
        altered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not verify_signature(secret, altered, signature(secret, body))

    def test_another_secret_does_not_verify(self) -> None:
        assert not verify_signature("b" * 20, b"{}", signature("a" * 20, b"{}"))


class TestBackoff:
    @given(failures=st.integers(1, 10_000), jitter=st.floats(0, 1))
    def test_stays_within_half_and_whole_of_its_step_and_the_cap(self, failures: int, jitter: float) -> None:
        """A delay is between half and all of min(5 min, 2^(n-1) s)."""
        step = min(300.0, 2.0 ** min(failures - 1, 60))
        delay = Backoff().delay(failures, jitter)
        assert step / 2 <= delay <= step
        assert delay <= 300.0

    @given(failures=st.integers(1, 100), jitter=st.floats(0, 1))
    def test_never_shrinks_as_failures_grow(self, failures: int, jitter: float) -> None:
        backoff = Backoff()
        assert backoff.delay(failures + 1, jitter) >= backoff.delay(failures, jitter)

    def test_starts_at_one_second_and_reaches_five_minutes(self) -> None:
        """Without jitter: 1, 2, 4 ... 256 s, then 300 s for good."""
        backoff = Backoff()
        assert [backoff.delay(n, 1.0) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
        assert backoff.delay(0, 1.0) == 0.0


class TestTypeFilter:
    def test_exact_names_and_prefixes(self) -> None:
        wanted = TypeFilter.of(["workorder.completed", "asset.*"])
        assert wanted("workorder.completed")
        assert wanted("asset.relocated")
        assert not wanted("workorder.requested")
        assert not wanted("inventory.received")

    def test_no_types_means_every_type(self) -> None:
        assert TypeFilter.of([])("inventory.received")


AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SUB = Subscription(
    id="s1", url="https://receiver.example/hook", topics=("canonical.asset.v1",), types=(), description="",
    created_by="k1", created_at=AT, status="active", status_changed_at=AT, start_offsets={},
    last_event_id=None, last_delivered_at=None, consecutive_failures=0, last_error=None, last_attempt_at=None,
)  # fmt: skip
RECORD = BusRecord(
    "canonical.asset.v1", 2, 7, "A-1", b'{"event_id":"e1"}',
    (("event_type", b"asset.relocated"), ("event_id", b"e1"), ("schema_version", b"1")), 0,
)  # fmt: skip


async def _post(handler: httpx.MockTransport) -> str | None:
    async with httpx.AsyncClient(transport=handler, follow_redirects=False) as client:
        return await post_event(client, SUB, "whsec_test", RECORD)


class TestPostEvent:
    async def test_sends_the_body_as_stored_with_signed_headers(self) -> None:
        """The receiver gets the log's bytes and headers naming the event; a 2xx is success."""
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(202)

        assert await _post(httpx.MockTransport(answer)) is None
        [request] = seen
        assert request.content == RECORD.value
        assert request.headers["x-hub-event-type"] == "asset.relocated"
        assert request.headers["x-hub-event-id"] == "e1"
        assert request.headers["x-hub-signature-256"] == signature("whsec_test", RECORD.value)

    @pytest.mark.parametrize(
        ("response", "error"),
        [
            (httpx.Response(500), "HTTP 500 Internal Server Error"),
            (httpx.Response(302, headers={"Location": "https://elsewhere.example/"}), "HTTP 302 Found"),
            (httpx.Response(410), "HTTP 410 Gone"),
        ],
    )
    async def test_anything_but_2xx_is_a_failure(self, response: httpx.Response, error: str) -> None:
        """Redirects are not followed and the receiver's body is not kept."""
        assert await _post(httpx.MockTransport(lambda _: response)) == error

    async def test_timeouts_and_connection_errors_are_failures(self) -> None:
        def slow(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("slow", request=request)

        def refused(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        assert await _post(httpx.MockTransport(slow)) == "timeout (ReadTimeout)"
        assert await _post(httpx.MockTransport(refused)) == "ConnectError: connection refused"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _create(store: SubscriptionStore, created_by: str = "k1") -> tuple[str, str]:
    sub, secret = store.create(
        url="https://receiver.example/hook",
        topics=["canonical.asset.v1"],
        types=["asset.*"],
        description="dispatch board",
        created_by=created_by,
        start_offsets={"canonical.asset.v1": {"0": 3, "1": 0}},
    )
    return sub.id, secret


class TestSubscriptionStore:
    def test_round_trip_without_the_secret(self, engine: Engine) -> None:
        """What is created reads back as given, active, with a clean delivery state."""
        store = SubscriptionStore(engine, KEY)
        sub_id, _ = _create(store)
        sub = store.get(sub_id)
        assert sub is not None
        assert (sub.url, sub.topics, sub.types, sub.status) == (
            "https://receiver.example/hook",
            ("canonical.asset.v1",),
            ("asset.*",),
            "active",
        )
        assert sub.start("canonical.asset.v1", 0) == 3
        assert sub.start("canonical.asset.v1", 5) == 0  # a partition created later starts at 0
        assert (sub.consecutive_failures, sub.last_error, sub.last_event_id) == (0, None, None)
        assert sub.group == f"webhook.{sub_id}"

    def test_secret_is_encrypted_at_rest_and_reads_back(self, engine: Engine) -> None:
        """The stored column is ciphertext; the store decrypts it with the same key, not another."""
        store = SubscriptionStore(engine, KEY)
        sub_id, secret = _create(store)
        with engine.connect() as conn:
            stored = conn.execute(select(subscriptions_table.c.secret_encrypted)).scalar_one()
        assert secret.encode() not in bytes(stored)
        assert store.secret(sub_id) == secret
        with pytest.raises(ArchiveError):
            SubscriptionStore(engine, subscription_key(b"another")).secret(sub_id)

    def test_pause_resume_delete(self, engine: Engine) -> None:
        """Deleted is final, leaves the lists and forgets the secret."""
        store = SubscriptionStore(engine, KEY)
        sub_id, _ = _create(store)
        paused = store.set_status(sub_id, "paused")
        assert paused is not None
        assert paused.status == "paused"
        assert [s.id for s in store.list(statuses=("active",))] == []
        resumed = store.set_status(sub_id, "active")
        assert resumed is not None
        assert resumed.status == "active"
        store.set_status(sub_id, "deleted")
        after = store.set_status(sub_id, "active")
        assert after is not None
        assert after.status == "deleted"
        assert store.list() == []
        with pytest.raises(ArchiveError):
            store.secret(sub_id)

    def test_list_by_creator(self, engine: Engine) -> None:
        store = SubscriptionStore(engine, KEY)
        mine, _ = _create(store, "k1")
        _create(store, "k2")
        assert [s.id for s in store.list(created_by="k1")] == [mine]
        assert len(store.list()) == 2

    def test_delivery_state(self, engine: Engine) -> None:
        """Failures count up with the last error; a success resets the count and keeps the error text."""
        store = SubscriptionStore(engine, KEY)
        sub_id, _ = _create(store)
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        store.record_failure(sub_id, "HTTP 500 Internal Server Error", at)
        store.record_failure(sub_id, "timeout (ReadTimeout)", at)
        sub = store.get(sub_id)
        assert sub is not None
        assert (sub.consecutive_failures, sub.last_error, sub.last_attempt_at) == (
            2,
            "timeout (ReadTimeout)",
            at,
        )
        store.record_success(sub_id, "evt-1", at)
        sub = store.get(sub_id)
        assert sub is not None
        assert (sub.consecutive_failures, sub.last_event_id, sub.last_delivered_at) == (0, "evt-1", at)
        assert sub.last_error == "timeout (ReadTimeout)"
