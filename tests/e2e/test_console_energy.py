"""能耗 Energy in the console, in headless Chromium on a phone-sized screen, against `hub serve`.

A known month of hourly registers (`campus_csv`) is ingested through the real wiring, then
served with keys required: every figure the page shows is one this file can compute by hand (steady
hourly use per meter and one surge), and the page must drill campus -> building -> floor ->
zone -> meters showing them, show the surge's evidence, and never be wider than a 390 px phone.
A key scoped to one department sees only that department's building.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from hub.auth.roles import Role
from tests.e2e.conftest import free_port, wired_hub
from tests.e2e.test_console import KEYED, Console, browser, keep_shot  # noqa: F401  (fixture)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, ViewportSize

SITE = ZoneInfo("Asia/Shanghai")
PHONE: ViewportSize = {"width": 390, "height": 844}
# Naive on purpose: the export's times are the site's local time, as a BMS writes them.
START = datetime(2024, 5, 29)  # noqa: DTZ001  (the first reading; May holds 3 days of use)
END = datetime(2024, 6, 27)  # noqa: DTZ001  (the last reading closes 2024-06-26 23:00-24:00)
SURGE = datetime(2024, 6, 26, 15)  # noqa: DTZ001  (the reading closing 14:00-15:00: 100 kWh, not 10)
# meter, building, zone, 计量类型, first register, use per hour
METERS = [
    ("A-1F-E01", "A", "A-1F-ER", "电", 1000.0, 10.0),
    ("A-1F-W01", "A", "A-1F-ER", "水", 500.0, 0.5),
    ("B-3F-E01", "B", "B-3F-ICU", "电", 2000.0, 20.0),
    ("B-5F-E01", "B", "B-5F-WARD", "电", 3000.0, 30.0),
]


def campus_csv() -> bytes:
    lines = ["表计编号,楼栋,区域,计量类型,抄表时间,读数"]
    for meter, building, zone, word, first, per_hour in METERS:
        at, register = START, first
        while at <= END:
            lines.append(f"{meter},{building},{zone},{word},{at:%Y-%m-%d %H:%M},{register:.3f}")
            at += timedelta(hours=1)
            register += 100.0 if (meter == "A-1F-E01" and at == SURGE) else per_hour
    return ("\n".join(lines) + "\n").encode("utf-8")


def shown(value: float, unit: str) -> str:
    """A figure as the page writes it (zh-CN grouping, at most 2 decimals)."""
    return f"{value:,.2f}".rstrip("0").rstrip(".") + f" {unit}"


class ThreadServed:
    """The real wiring (build_hub + build_api, as `hub serve` builds them) over the export, ticked
    once at a fixed time just after the last reading, and served by uvicorn from a thread of its
    own (the sync playwright of the browser fixture keeps an event loop in this one): faster than
    a `hub serve` subprocess. (The runners' own ticks, by today's clock, add open gaps from the
    last reading on: true, and asserted on by nothing here.)"""

    def __init__(self, data: Path, export: Path) -> None:
        self.data, self.export = data, export
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens: dict[str, str] = {}
        self.server: uvicorn.Server | None = None
        self.failure: BaseException | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(120), "the hub did not start"
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        settings = {"raw_key": KEYED["HUB_RAW_KEY"], "api_port": self.port}
        async with wired_hub(self.data, settings=settings) as w:
            await w.ingest("bms", self.export)
            energy = next(p for p in w.hub.api.projections if p.name == "energy")
            with w.hub.engine.begin() as conn:
                energy.tick(conn, END.replace(tzinfo=SITE) + timedelta(minutes=5))  # type: ignore[attr-defined]
            self.tokens = {"viewer": w.token(Role.VIEWER), "er": w.token(Role.VIEWER, "急诊科")}
            # The app's lifespan is already entered by wired_hub.
            config = uvicorn.Config(
                w.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
            self.server = uvicorn.Server(config)
            task = asyncio.create_task(self.server.serve())
            while not self.server.started:
                assert not task.done(), "the API did not start"
                await asyncio.sleep(0.05)
            self.ready.set()
            await task


@pytest.fixture(scope="module")
def energy_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServed, dict[str, str]]]:
    root = tmp_path_factory.mktemp("console-energy")
    export = root / "能耗-campus.csv"
    export.write_bytes(campus_csv())
    served = ThreadServed(root / "hub", export)
    served.start()
    yield served, served.tokens
    served.stop()


def phone(browser: Browser, served: ThreadServed, token: str) -> tuple[Any, Console]:  # noqa: F811
    context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
    tab = Console(context.new_page(), served.url)
    tab.open("energy")
    tab.page.fill("#key-input", token)
    tab.page.click("#key-form button[type=submit]")
    return context, tab


def no_sideways_scroll(tab: Console) -> None:
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"


def test_drill_down_shows_the_known_figures_and_the_surge_evidence(  # noqa: PLR0915  (one walk down and up)
    browser: Browser,  # noqa: F811
    energy_hub: tuple[ThreadServed, dict[str, str]],
    tmp_path: Path,
) -> None:
    """Campus -> A -> 1F -> A-1F-ER -> meters with the hand-computed figures; the surge's baseline,
    observed and window; months with month-on-month; 390 px wide throughout."""
    from playwright.sync_api import expect

    served, tokens = energy_hub
    context, tab = phone(browser, served, tokens["viewer"])
    page = tab.page
    try:
        # Opens on the two weeks up to the latest reading: 13 full days (06-14..06-26).
        tab.wait_summary("energy-summary", "2024-06-14 至 2024-06-27")
        campus_kwh = 13 * (10 + 20 + 30) * 24 + 90
        expect(page.locator("#energy-card-electricity_kwh")).to_contain_text(shown(campus_kwh, "kWh"))
        expect(page.locator("#energy-card-water_m3")).to_contain_text(shown(13 * 12, "m3"))
        expect(tab.rows("energy-children")).to_have_count(2)
        assert tab.column("energy-children", 0) == ["A", "B"]
        assert tab.column("energy-children", 1) == [shown(13 * 240 + 90, "kWh"), shown(13 * 1200, "kWh")]
        expect(page.locator("#energy-chart canvas")).to_have_count(1)
        no_sideways_scroll(tab)

        # Campus -> building A -> 1F -> zone A-1F-ER: the same electricity at every level.
        for expected_rows in (["1F"], ["A-1F-ER"]):
            tab.rows("energy-children").first.click()
            expect(tab.rows("energy-children").first).to_contain_text(expected_rows[0])
            assert tab.column("energy-children", 0) == expected_rows
            assert tab.column("energy-children", 1) == [shown(13 * 240 + 90, "kWh")]
        expect(page.locator("#energy-crumbs")).to_contain_text("A 门诊医技楼")
        tab.rows("energy-children").first.click()
        expect(page.locator("#energy-crumbs")).to_contain_text("A-1F-ER 急诊大厅")
        expect(tab.rows("energy-children")).to_have_count(2)
        assert tab.column("energy-children", 0) == ["A-1F-E01", "A-1F-W01"]
        assert tab.column("energy-children", 1) == [shown(13 * 240 + 90, "kWh"), "—"]
        assert tab.column("energy-children", 2) == ["—", shown(13 * 12, "m3")]
        periods = dict(zip(tab.column("energy-periods", 0), tab.column("energy-periods", 1), strict=True))
        assert periods["2024-06-26"] == shown(23 * 10 + 100, "kWh")
        assert periods["2024-06-25"] == shown(240, "kWh")

        # The surge, with its evidence: what was expected, what was seen, when.
        surge = page.locator("#energy-anomalies article[data-kind=surge]")
        expect(surge).to_have_count(1)
        truth = httpx.get(
            f"{served.url}/energy/anomalies",
            params={"from": "2024-06-26", "to": "2024-06-26", "zone": "A-1F-ER", "kind": "surge"},
            headers={"Authorization": f"Bearer {tokens['viewer']}"},
            timeout=30,
        ).json()
        (anomaly,) = truth["items"]
        assert (anomaly["baseline"], anomaly["observed"], anomaly["meter_id"]) == (10, 100, "A-1F-E01")
        expect(surge.locator(".evidence-baseline")).to_have_text("10 kWh/h")
        expect(surge.locator(".evidence-observed")).to_have_text("100 kWh/h")
        times = surge.locator(".evidence-window time")
        assert [times.nth(i).get_attribute("datetime") for i in range(2)] == [
            anomaly["window_start"], anomaly["window_end"],
        ]  # fmt: skip
        expect(surge).to_contain_text(anomaly["reason"])
        expect(surge).to_contain_text("A-1F-E01")
        no_sideways_scroll(tab)
        keep_shot(page, tmp_path, "console-energy-zone-phone.png")

        # Months, with month-on-month where the month before has data.
        page.select_option("#energy-form select[name=grain]", "month")
        expect(tab.rows("energy-periods")).to_have_count(2)
        assert tab.column("energy-periods", 0) == ["2024-05", "2024-06"]
        june = page.locator("#energy-periods tbody tr").nth(1)
        expect(june).to_contain_text(shown(26 * 240 + 90, "kWh"))
        expect(june).to_contain_text(shown(3 * 240, "kWh"))
        expect(june).to_contain_text(f"+{(26 * 240 + 90 - 720) / 720 * 100:,.2f}%")
        no_sideways_scroll(tab)

        # Back up to the campus by its crumb.
        page.locator("#energy-crumbs button", has_text="园区").click()
        expect(tab.rows("energy-children")).to_have_count(2)
    finally:
        context.close()
    assert tab.errors == [], tab.errors


def test_a_department_key_sees_only_its_own_building(
    browser: Browser,  # noqa: F811
    energy_hub: tuple[ThreadServed, dict[str, str]],
) -> None:
    """The ER's key (急诊科, zone A-1F-ER): building A only, and only its zone's figures; a
    hospital-wide key entered next sees both buildings."""
    from playwright.sync_api import expect

    served, tokens = energy_hub
    context, tab = phone(browser, served, tokens["er"])
    try:
        tab.wait_summary("energy-summary", "2024-06-14 至 2024-06-27")
        expect(tab.rows("energy-children")).to_have_count(1)
        assert tab.column("energy-children", 0) == ["A"]
        departments = tab.page.locator("#energy-form select[name=department] option")
        assert departments.all_inner_texts()[1:] == ["急诊科 0402"]
        expect(tab.page.locator("#energy-card-electricity_kwh")).to_contain_text(shown(13 * 240 + 90, "kWh"))
        no_sideways_scroll(tab)
        # Another key in the same tab: the hierarchy is asked for again, not kept from the ER's.
        tab.page.fill("#key-input", tokens["viewer"])
        tab.page.click("#key-form button[type=submit]")
        expect(tab.rows("energy-children")).to_have_count(2)
        assert tab.column("energy-children", 0) == ["A", "B"]
        departments = tab.page.locator("#energy-form select[name=department] option")
        assert departments.all_inner_texts()[1:] == ["急诊科 0402", "重症医学科 0301", "心血管内科 0501"]
    finally:
        context.close()
    assert tab.errors == [], tab.errors


def test_per_bed_day_says_whether_its_bed_days_are_the_census_or_open_beds(
    browser: Browser,  # noqa: F811
    energy_hub: tuple[ThreadServed, dict[str, str]],
) -> None:
    """The ICU zone counts its 30 open beds a day; its department (0301) has a June census of 852
    occupied bed-days, 28.4 a June day. The page names the basis of each figure."""
    from playwright.sync_api import expect

    served, tokens = energy_hub
    context, tab = phone(browser, served, tokens["viewer"])
    page = tab.page

    def june_25() -> tuple[str, str]:
        rows = zip(
            tab.column("energy-periods", 0),
            tab.column("energy-periods", 7),
            tab.column("energy-periods", 8),
            strict=True,
        )
        return next((per_bed_day, basis) for period, per_bed_day, basis in rows if period == "2024-06-25")

    try:
        tab.wait_summary("energy-summary", "2024-06-14 至 2024-06-27")
        for name in ("B", "3F", "B-3F-ICU"):
            page.locator("#energy-children tbody tr", has_text=name).first.click()
            expect(page.locator("#energy-crumbs")).to_contain_text(name)
        expect(page.locator("#energy-periods")).to_contain_text("开放床位 open beds")
        assert june_25() == (shown(20 * 24 / 30, "").strip(), "开放床位 open beds")
        expect(page.locator("#energy-card-electricity_kwh")).to_contain_text("开放床位 open beds")

        page.select_option("#energy-form select[name=department]", "0301")
        expect(page.locator("#energy-periods")).to_contain_text("住院日报 census")
        assert june_25() == (shown(20 * 24 / 28.4, "").strip(), "住院日报 census")
        expect(page.locator("#energy-card-electricity_kwh")).to_contain_text("住院日报 census")
        no_sideways_scroll(tab)
    finally:
        context.close()
    assert tab.errors == [], tab.errors


def test_a_campus_of_more_zones_than_a_page_is_fetched_page_by_page(
    browser: Browser,  # noqa: F811
    energy_hub: tuple[ThreadServed, dict[str, str]],
) -> None:
    """GET /energy/zones gives at most 1,000 zones a page. Served a campus of 2,400 bare zones
    ahead of the real ones (the browser's requests answered from the real list, paged the way the
    API pages), the page asks for every page and shows what only the last page holds: the real
    departments, and the range ending on the real zones' last reading."""
    from playwright.sync_api import Route, expect

    served, tokens = energy_hub
    real = httpx.get(f"{served.url}/energy/zones", headers={"Authorization": f"Bearer {tokens['viewer']}"},
                     timeout=30).json()["items"]  # fmt: skip
    filler = [
        {**real[0], "building": "Z", "floor": None, "zone": f"Z-{n:04d}", "place": None, "dept_code": None,
         "dept_name": None, "location": None, "meters": [], "last_at": "2024-01-01T00:00:00Z"}
        for n in range(2400)
    ]  # fmt: skip
    campus = filler + real
    asked: list[tuple[int, int]] = []

    def zones(route: Route) -> None:
        query = dict(httpx.URL(route.request.url).params)
        limit, offset = int(query.get("limit", "1000")), int(query.get("offset", "0"))
        asked.append((limit, offset))
        page = campus[offset : offset + min(limit, 1000)]
        route.fulfill(json={"items": page, "total": len(campus), "limit": limit, "offset": offset})

    context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.route("**/energy/zones*", zones)
    tab = Console(context.new_page(), served.url)
    try:
        tab.open("energy")
        tab.page.fill("#key-input", tokens["viewer"])
        tab.page.click("#key-form button[type=submit]")
        tab.wait_summary("energy-summary", "2024-06-14 至 2024-06-27")
        departments = tab.page.locator("#energy-form select[name=department] option")
        expect(departments).to_have_count(4)
        assert departments.all_inner_texts()[1:] == ["急诊科 0402", "重症医学科 0301", "心血管内科 0501"]
        # (asked again once the key is entered: another key may see other zones)
        assert sorted(set(asked)) == [(1000, 0), (1000, 1000), (1000, 2000)]
    finally:
        context.close()
    assert tab.errors == [], tab.errors
