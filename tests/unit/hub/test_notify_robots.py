"""Robot and webhook payloads of notifications: the formats WeCom and DingTalk document, signatures, refusals."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit
from uuid import uuid4

import httpx
import pytest

from hub.delivery.robots import NotificationDelivery, dingtalk_url, request_for, wecom_payload
from hub.delivery.webhooks.rules import verify_signature
from hub.delivery.webhooks.targets import TargetPolicy
from hub.ports import SystemClock
from projections.notifications.rules import Channel, parse_rules
from schemas._base import SourceSystem
from schemas.envelope import Source
from schemas.notifications import NotificationSent

NOW = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)


def sent(channels: list[str]) -> NotificationSent:
    return NotificationSent.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": NOW,
            "recorded_at": NOW,
            "source": Source(system=SourceSystem.HUB, site="h01", message_id="n", adapter_version="t"),
            "subject": "NTF-1",
            "payload": {
                "notification_id": "NTF-1",
                "rule": "r",
                "trigger_event_id": "e",
                "trigger_type": "workorder.sla_breached",
                "title": "工单超时",
                "text": "工单 WO-1 响应超时",
                "recipients": [{"kind": "role", "value": "admin"}],
                "channels": channels,
            },
        }
    )


def test_dingtalk_signature_is_the_documented_hmac_of_timestamp_and_secret() -> None:
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SECabc", 1_700_000_000_000)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["T"]
    assert query["timestamp"] == ["1700000000000"]
    expected = hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()
    assert base64.b64decode(unquote_plus(url.split("sign=")[1])) == expected
    assert dingtalk_url("https://x/robot", None, 1) == "https://x/robot"  # no secret: no signing


def test_dingtalk_and_generic_webhook_bodies() -> None:
    ding = Channel("d", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T")
    _, body, _ = request_for(ding, sent(["d"]), "工单超时", "正文", NOW)
    assert json.loads(body) == {
        "msgtype": "markdown",
        "markdown": {"title": "工单超时", "text": "### 工单超时\n正文"},
    }
    hook = Channel("h", "webhook", "https://dispatch.example/hook", secret="s3cret")
    event = sent(["h"])
    _, body, headers = request_for(hook, event, "工单超时", "正文", NOW)
    assert json.loads(body)["type"] == "notification.sent"
    assert verify_signature("s3cret", body, headers["X-Hub-Signature-256"])
    assert headers["X-Hub-Event-Id"] == str(event.event_id)


def test_wecom_content_is_clipped_to_the_robot_limit_on_a_character_boundary() -> None:
    content = wecom_payload("标题", "长" * 3000)["markdown"]["content"]
    assert len(content.encode()) <= 4096
    content.encode().decode()  # whole characters only


@pytest.mark.asyncio
async def test_refused_target_and_robot_errcode_are_recorded_as_failed() -> None:
    rules = parse_rules(
        {
            "channels": {
                "inside": {"kind": "wecom", "url": "http://10.1.2.3/cgi-bin/webhook/send?key=K"},
                "robot": {"kind": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"},
            },
            "rules": [],
        }
    )

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "qyapi.weixin.qq.com"  # the refused one is never posted
        return httpx.Response(200, json={"errcode": 93000, "errmsg": "invalid webhook url"})

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    delivery = NotificationDelivery(
        rules,
        bus=None,  # type: ignore[arg-type]
        clock=SystemClock(),
        targets=TargetPolicy(),
        transport=httpx.MockTransport(answer),
        sleep=sleep,
    )
    facts = await delivery.deliver(sent(["inside", "robot"]))
    outcome = {f.payload.channel: (f.payload.outcome, f.payload.error, f.payload.attempts) for f in facts}
    assert outcome["inside"][0::2] == ("failed", 1)  # a refused target is not retried
    assert "HUB_WEBHOOK_ALLOW" in (outcome["inside"][1] or "")
    assert outcome["robot"] == ("failed", "errcode 93000: invalid webhook url", 3)
    assert waits == [2.0, 10.0]  # retried with backoff, then recorded as failed
    assert all(
        "key=K" not in f.model_dump_json() for f in facts
    )  # the URL (it holds the key) is never recorded
    again = await delivery.deliver(sent(["inside", "robot"]))
    assert {f.event_id for f in again} == {
        f.event_id for f in facts
    }  # same notification, channel, level: same id


async def test_a_robot_refusal_or_a_server_error_is_retried_until_it_goes_through() -> None:
    rules = parse_rules(
        {
            "channels": {
                "robot": {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=T"}
            }
        }
    )
    answers = [
        httpx.Response(503),
        httpx.Response(200, json={"errcode": 130101, "errmsg": "send too fast"}),
        httpx.Response(200, json={"errcode": 0, "errmsg": "ok"}),
    ]
    posted: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        return answers[len(posted) - 1]

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    delivery = NotificationDelivery(
        rules,
        bus=None,  # type: ignore[arg-type]
        clock=SystemClock(),
        transport=httpx.MockTransport(answer),
        retry_delays=(1.0, 4.0),
        sleep=sleep,
    )
    (fact,) = await delivery.deliver(sent(["robot"]))
    assert (fact.payload.outcome, fact.payload.attempts, fact.payload.status_code) == ("delivered", 3, 200)
    assert waits == [1.0, 4.0]
    assert len(set(posted)) == 1  # the same message each time


async def test_hub_serve_delivery_stays_one_group_member_across_idle_rounds(tmp_path: Path) -> None:
    """`run` keeps its consumer: idle rounds neither rejoin the group (a rebalance each time on
    Kafka) nor miss a notification published between them, which is delivered once."""
    from hub.bus.embedded import EmbeddedBus
    from hub.ports import event_out_record
    from topics.catalogue import CATALOGUE

    bus = EmbeddedBus(tmp_path / "bus")
    await bus.start()
    await bus.ensure_topics(CATALOGUE)
    joins = 0
    make_consumer = bus.consumer

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal joins
        joins += 1
        return await make_consumer(*args, **kwargs)

    bus.consumer = counted  # type: ignore[method-assign]
    posted: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    rules = parse_rules(
        {
            "channels": {
                "robot": {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=T"}
            }
        }
    )
    delivery = NotificationDelivery(
        rules, bus=bus, clock=SystemClock(), transport=httpx.MockTransport(answer)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop, every_s=0.05))
    try:
        await asyncio.sleep(0.5)  # about ten idle rounds
        await bus.publish("derived.notification.v1", [event_out_record(sent(["robot"]))])
        for _ in range(100):
            if posted:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await bus.close()
    assert len(posted) == 1
    assert joins == 1
