"""The item-2 leftovers end to end: the one-time acknowledgement link a WeCom message carries
(its GET acknowledges nothing, its POST is the read receipt without an API key, once), and a robot
that keeps refusing: retried with backoff, then shown as a failed delivery on the notification."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from hub.auth.roles import Role
from hub.pipeline import drain
from projections.work_orders.sla import Breach, breach_event
from tests.e2e.conftest import Wired, wired_hub
from tests.e2e.test_api_notifications import T0, Clock, M, inbox, key, receiver, requested, rules

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["receiver"]  # the local robot endpoint fixture
LINK = re.compile(r"\[确认已读\]\((http://[^)]+)\)")


async def _breached(w: Wired) -> None:
    await w.hub.api.publish(requested("WO-1"))
    await w.hub.api.publish(
        breach_event("WO-1", Breach("response", 1, T0), site="h01", causation_id=None, recorded_at=T0)
    )
    await drain(w.hub)


async def test_the_link_in_the_robot_message_acknowledges_once(
    tmp_path: Path, receiver: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, got = receiver
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules(url), allow_unicode=True), encoding="utf-8")
    clock = Clock(T0)
    settings = {"notify_rules": path, "webhook_allow": ["127.0.0.1"], "site": "h01"}
    async with wired_hub(tmp_path / "hub", settings=settings, clock=clock) as w:
        wang = key(w, Role.VIEWER, "王工")
        await _breached(w)
        await w.hub.notify.run_until_idle()
        (link,) = LINK.findall(got[0][1]["markdown"]["content"])
        target = urlsplit(link)
        local = f"{target.path}?{target.query}"

        page = await w.http.get(local)  # no API key: the link is the credential
        assert page.status_code == 200
        assert "确认已读" in page.text
        assert [n["state"] for n in await inbox(w, wang)] == ["unread"]  # a preview's GET is no receipt

        ack = await w.http.post(local)
        assert ack.status_code == 202, ack.text
        assert (ack.json()["key_id"], ack.json()["reader"]) == ("link", "群消息链接（biomed-group）")
        assert (await w.http.post(local)).status_code == 410  # once
        assert (await w.http.post(f"{target.path}?token=forged.x")).status_code == 403
        assert (await w.http.post(target.path)).status_code == 401  # no link, no key

        await drain(w.hub)
        clock.at = T0 + 30 * M  # both escalation steps would be due by now
        await drain(w.hub)
        (done,) = await inbox(w, wang, state="read")
        assert (done["level"], [r["key_id"] for r in done["receipts"]]) == (0, ["link"])


async def test_a_robot_that_keeps_refusing_is_retried_then_marked_failed(
    tmp_path: Path, receiver: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, got = receiver
    path = tmp_path / "rules.yaml"
    config = rules(url)
    config["channels"]["biomed-group"]["url"] = f"{url}/refuse?key=K"  # the receiver answers errcode 45009
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    settings = {"notify_rules": path, "webhook_allow": ["127.0.0.1"], "site": "h01"}
    async with wired_hub(tmp_path / "hub", settings=settings, clock=Clock(T0)) as w:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        w.hub.notify.sleep = sleep
        await _breached(w)
        await w.hub.notify.run_until_idle()
        await drain(w.hub)
        assert len(got) == 3
        assert waits == [2.0, 10.0]
        (shown,) = await inbox(w, w.auth(Role.ADMIN), view="all")
        assert shown["delivery_failed"] is True
        assert [(d["channel"], d["outcome"], d["attempts"], d["error"]) for d in shown["deliveries"]] == [
            ("biomed-group", "failed", 3, "errcode 45009: api freq out of limit")
        ]
