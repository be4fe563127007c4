"""Notifications end to end: an SLA breach on the bus -> inbox -> escalation on the injected clock
-> read receipt over the API (published, audited on the log) -> no more escalation; and the
WeCom group-robot message a local receiver gets."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import uuid4

import pytest
import yaml
from jsonschema import Draft7Validator

from hub.auth.roles import Role
from hub.pipeline import drain
from projections.work_orders.sla import Breach, breach_event
from schemas._base import DeptRef, Identifier, SourceSystem
from schemas.envelope import Source
from schemas.work_orders import WorkOrderRequested
from tests.e2e.conftest import Wired, wired_hub

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
M = timedelta(minutes=1)
ICU, ER = "重症医学科", "急诊科"


# The WeCom group robot's markdown message, as its API documents it (群机器人配置说明: msgtype
# "markdown", markdown.content required, at most 4096 bytes UTF-8, nothing else).
WECOM_MARKDOWN = {
    "type": "object",
    "required": ["msgtype", "markdown"],
    "additionalProperties": False,
    "properties": {
        "msgtype": {"const": "markdown"},
        "markdown": {
            "type": "object",
            "required": ["content"],
            "additionalProperties": False,
            "properties": {"content": {"type": "string", "minLength": 1, "maxLength": 4096}},
        },
    },
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


class Receiver(BaseHTTPRequestHandler):
    """A robot endpoint on loopback: keeps what it gets, answers as WeCom does."""

    got: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((self.path, json.loads(body)))
        answer = b'{"errcode":0,"errmsg":"ok"}'
        if self.path.startswith("/refuse"):  # as WeCom answers a robot over its rate limit
            answer = b'{"errcode":45009,"errmsg":"api freq out of limit"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    handler = type("R", (Receiver,), {"got": got})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", got
    server.shutdown()
    server.server_close()


def rules(url: str) -> dict[str, Any]:
    return {
        "on_call": {"biomed": ["王工"], "lead": ["张主任"]},
        "channels": {"biomed-group": {"kind": "wecom", "url": f"{url}/cgi-bin/webhook/send?key=K"}},
        "rules": [
            {
                "id": "sla",
                "on": "workorder.sla_breached",
                "to": [{"on_call": "biomed"}, {"department": "subject"}],
                "title": "工单超时：{workorder_id}",
                "text": "工单 {workorder_id} {kind_zh}超时",
                "channels": ["inbox", "biomed-group"],
                "escalate": [
                    {"after_minutes": 10, "to": [{"on_call": "lead"}]},
                    {"after_minutes": 20, "to": [{"role": "admin"}]},
                    {"after_minutes": 30, "to": [{"role": "auditor"}]},
                ],
            }
        ],
    }


def requested(workorder_id: str) -> WorkOrderRequested:
    return WorkOrderRequested(
        event_id=uuid4(),
        occurred_at=T0 - 40 * M,
        recorded_at=T0 - 40 * M,
        source=Source(system=SourceSystem.OA, site="h01", message_id=workorder_id, adapter_version="t"),
        subject=workorder_id,
        payload={
            "asset": Identifier(scheme="hrp.card", value="ZC-1"),
            "reporting_department": DeptRef(code="0101", name=ICU),
            "symptom": "报警",
            "priority": "low",  # its own SLA clock stays far off: only the breach below notifies
        },
    )


def key(w: Wired, role: Role, label: str, department: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {w.hub.keys.create(role, department=department, label=label)[1]}"}


async def inbox(w: Wired, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = await w.http.get("/notifications", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.asyncio
async def test_breach_escalates_twice_then_stops_when_acknowledged(
    tmp_path: Path, receiver: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, got = receiver
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules(url), allow_unicode=True), encoding="utf-8")
    clock = Clock(T0)
    settings = {"notify_rules": path, "webhook_allow": ["127.0.0.1"], "site": "h01"}
    async with wired_hub(tmp_path / "hub", settings=settings, clock=clock) as w:
        wang, zhang = key(w, Role.VIEWER, "王工"), key(w, Role.VIEWER, "张主任")
        icu, er = key(w, Role.VIEWER, "", ICU), key(w, Role.ADMIN, "", ER)
        publish = w.hub.api.publish
        await publish(requested("WO-1"))
        await publish(
            breach_event("WO-1", Breach("response", 1, T0), site="h01", causation_id=None, recorded_at=T0)
        )
        await drain(w.hub)

        (mine,) = await inbox(w, wang)
        nid = mine["notification_id"]
        assert (mine["state"], mine["level"], mine["title"]) == ("unread", 0, "工单超时：WO-1")
        assert (mine["department_name"], len(await inbox(w, icu))) == (ICU, 1)
        assert await inbox(w, zhang) == []
        assert await inbox(w, er, view="all") == []  # another department's: not even in the overview

        clock.at = T0 + 10 * M
        await drain(w.hub)
        assert [n["level"] for n in await inbox(w, zhang)] == [1]
        clock.at = T0 + 20 * M
        await drain(w.hub)
        assert [n["state"] for n in await inbox(w, wang)] == ["escalated"]
        assert len(await inbox(w, w.auth(Role.ADMIN))) == 1  # level 2: the admin role

        refused = await w.http.post(f"/notifications/{nid}/ack", headers=er)
        assert refused.status_code == 404  # outside the key's department: as unknown
        ack = await w.http.post(f"/notifications/{nid}/ack", headers=zhang)
        assert ack.status_code == 202, ack.text
        assert ack.json()["reader"] == "张主任"
        await drain(w.hub)
        clock.at = T0 + 40 * M  # level 3 would be due now
        await drain(w.hub)
        (done,) = await inbox(w, zhang, state="read")
        assert (done["level"], [r["reader"] for r in done["receipts"]]) == (2, ["张主任"])
        assert done["receipts"][0]["read_at"].startswith("2026-06-03T02:20")
        assert await inbox(w, key(w, Role.AUDITOR, "审计")) == []

        await check_robot(w, got)
        assert await log_types(w, nid) == ["notification.delivered"] * 3 + ["notification.escalated"] * 2 + [
            "notification.read",
            "notification.sent",
        ]
        # ...and in the history of the work order it is about.
        story = await w.http.get(
            "/history/workorder/WO-1", params={"derived": "true"}, headers=w.auth(Role.ADMIN)
        )
        assert story.status_code == 200, story.text
        kinds = [e["event_type"] for e in story.json()["items"]]
        assert {"notification.sent", "notification.escalated", "notification.read"} <= set(kinds)


async def check_robot(w: Wired, got: list[tuple[str, dict[str, Any]]]) -> None:
    """The first message and both escalations reached the robot once, in WeCom's markdown format."""
    await w.hub.notify.run_until_idle()
    assert [p for p, _ in got] == ["/cgi-bin/webhook/send?key=K"] * 3
    for _, body in got:
        assert list(Draft7Validator(WECOM_MARKDOWN).iter_errors(body)) == []
        assert len(body["markdown"]["content"].encode()) <= 4096  # bytes, which JSON Schema cannot count
    first = got[0][1]["markdown"]["content"]
    assert first.startswith(
        "### 工单超时：WO-1\n工单 WO-1 响应超时\n\n[确认已读](http://127.0.0.1:8000/notifications/NTF-"
    )
    assert got[2][1]["markdown"]["content"].startswith("### 【升级 2】工单超时：WO-1")
    await w.hub.notify.run_until_idle()
    assert len(got) == 3  # delivered once: the group's offsets were committed


async def log_types(w: Wired, nid: str) -> list[str]:
    """The types of every record keyed by the notification id on the notification topics."""
    consumer = await w.hub.bus.consumer(
        ["derived.notification.v1", "canonical.notification.v1"], group=None, from_beginning=True
    )
    records = []
    for _ in range(20):  # bounded: a few small batches
        batch = await consumer.poll(max_records=100, timeout_s=0.3)
        if not batch:
            break
        records += batch
    await consumer.close()
    return sorted((r.header("event_type") or b"").decode() for r in records if r.key == nid)
