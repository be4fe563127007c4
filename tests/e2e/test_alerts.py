"""A channel that stops receiving raises an alert, and a message clears it: on the bus, through
GET /alerts and on the console's Alerts page in headless Chromium.

The hub is the real wiring (build_hub + the API, served by uvicorn on loopback in this process)
with a test clock: "16 minutes later" is the clock moved, not a wait. Messages are stored in the
raw archive as the MLLP listener stores them (system his, transport mllp); the rule is a site's
YAML file given by HUB_ALERT_RULES.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from hub.api.app import build_api
from hub.bootstrap import Hub, build_hub
from hub.ports import InboundMessage
from hub.settings import Settings
from schemas.catalogue import parse_event
from tests.e2e.conftest import free_port
from tests.e2e.test_console import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, browser_unavailable

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = """
rules:
  - id: his-mllp-silent
    kind: channel_silent
    title: "HIS 接口无消息"
    system: his
    transport: mllp
    minutes: 15
    window: {start: "07:00", end: "22:00"}
    severity: critical
"""
ADT = (
    "MSH|^~\\&|WINNING_HIS|XXRMYY|HUB|XXRMYY|20240612090000+0800||ADT^A08^ADT_A01|{id}|P|2.5\r"
    "EVN|A08|20240612090000\r"
)


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class Served:
    hub: Hub
    clock: Clock
    url: str

    async def receive(self, message_id: str) -> None:
        """One HL7 message archived now, as the MLLP listener stores it."""
        await self.hub.archive.store(
            InboundMessage(
                system="his",
                payload=ADT.format(id=message_id).encode(),
                transport="mllp",
                message_id=message_id,
                site="main",
                received_at=self.clock.now(),
            )
        )

    async def streamed(self, types: str) -> list[str]:
        """The event names an SSE client following `types` gets from the beginning."""
        import httpx

        params = {"types": types, "from": "beginning", "limit": "2"}
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            answer = await http.get("/events/stream", params=params)
        return [
            line.removeprefix("event: ") for line in answer.text.splitlines() if line.startswith("event: ")
        ]

    async def alerts(self, state: str) -> list[dict[str, object]]:
        import httpx

        async with httpx.AsyncClient(base_url=self.url) as http:
            answer = await http.get("/alerts", params={"state": state})
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]  # type: ignore[no-any-return]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    clock = Clock(datetime(2024, 6, 12, 9, 0, tzinfo=SHANGHAI))
    port = free_port()
    settings = Settings(data_dir=tmp_path / "hub", auth="off", alert_rules=rules, api_port=port)
    async with build_hub(settings, clock=clock) as hub:
        app = build_api(hub)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done(), "the API did not start"
            await asyncio.sleep(0.05)
        try:
            yield Served(hub, clock, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task


def alerts_page(url: str, state: str, screenshot: Path) -> tuple[list[str], list[str]]:
    """The console's Alerts view with `state` chosen: the title cells and the page's errors."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        browser_unavailable("the Python package `playwright` is not installed")
    if not CHROMIUM.is_file():
        browser_unavailable(f"no Chromium at {CHROMIUM} (set HUB_CHROMIUM to another path)")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{url}/console#alerts")
            page.select_option("#ops-alerts-form select[name=state]", state)
            page.click("#ops-alerts-form button[type=submit]")
            expect(page.locator("#ops-alerts-summary")).to_contain_text("条告警")
            page.screenshot(path=str(screenshot), full_page=False)
            cells = page.eval_on_selector_all(
                "#ops-alerts-table tbody tr", "rows => rows.map(r => r.innerText.replace(/\\s+/g, ' '))"
            )
        finally:
            browser.close()
    return cells, errors


async def ops_events(hub: Hub) -> list[tuple[str, str]]:
    consumer = await hub.bus.consumer(["derived.ops.v1"], group=None, from_beginning=True)
    try:
        records = await consumer.poll(max_records=100, timeout_s=0.2)
    finally:
        await consumer.close()
    return [(e.type, e.payload.alert_id) for e in (parse_event(r.value) for r in records)]


class TestSilentChannel:
    async def test_raised_when_silent_shown_on_the_console_and_cleared_by_a_message(
        self, served: Served, tmp_path: Path
    ) -> None:
        """HIS MLLP quiet for 16 minutes at 09:00: one alert, on GET /alerts and the page; a message clears it."""
        await served.receive("MSG0001")
        assert await served.hub.alerts.check() == []
        served.clock.at += timedelta(minutes=16)
        await served.hub.alerts.check()
        await served.hub.alerts.check()  # still silent: nothing more

        open_now = await served.alerts("open")
        assert [(a["alert_id"], a["state"], a["target"], a["value"]) for a in open_now] == [
            ("his-mllp-silent", "open", "his/mllp", 16.0)
        ]
        shot = tmp_path / "console-alert-open.png"
        rows, errors = await asyncio.to_thread(alerts_page, served.url, "open", shot)
        assert errors == []
        assert len(rows) == 1
        assert "HIS 接口无消息" in rows[0]
        assert "未解除" in rows[0]
        assert shot.stat().st_size > 5_000

        served.clock.at += timedelta(minutes=2)
        await served.receive("MSG0002")
        await served.hub.alerts.check()
        assert await served.alerts("open") == []
        every = await served.alerts("all")
        assert [(a["state"], a["cleared_at"] is not None) for a in every] == [("cleared", True)]
        rows, errors = await asyncio.to_thread(
            alerts_page, served.url, "all", tmp_path / "console-alert-cleared.png"
        )
        assert errors == []
        assert len(rows) == 1
        assert "已解除" in rows[0]

        assert await ops_events(served.hub) == [
            ("ops.alert_raised", "his-mllp-silent"),
            ("ops.alert_cleared", "his-mllp-silent"),
        ]
        assert await served.streamed("ops.*") == ["ops.alert_raised", "ops.alert_cleared"]
