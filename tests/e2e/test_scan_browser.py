"""Scan-to-report as a nurse does it: a phone-sized headless Chromium opens the URL a printed
label's QR code holds, reports a fault in two taps, and sees the work order on the page, while
the engineers' `/workorders` lists it.

The hub serves, is sent one small HRP ledger (POST /ingest/hrp), the labels printed by
`hub labels --format png --manifest`; the URL opened is the manifest's, after checking that the
QR modules in the PNG are exactly that URL's code (hub.scan.labels.png_geometry). Debian's
Chromium only (never a downloaded one); skips (or fails with HUB_REQUIRE_BROWSER=1) without it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from PIL import Image

from hub.scan.labels import png_geometry, qr_matrix
from tests.e2e.conftest import REPO, Served, run_hub
from tests.e2e.test_console import WAIT_MS, browser  # noqa: F401  (the console tests' Chromium fixture)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SAMPLE = REPO / "examples" / "hrp" / "固定资产台账_分院_UTF8_BOM.csv"
NEONATAL = "新生儿科"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def scan_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, list[dict[str, str]]]]:
    """A hub serving the east campus's devices, and the neonatal ward's printed labels."""
    root = tmp_path_factory.mktemp("scan")
    data = root / "hub"
    served = Served(data)
    served.start()
    try:
        stored = httpx.post(
            f"{served.url}/ingest/hrp",
            params={"filename": SAMPLE.name},
            content=SAMPLE.read_bytes(),
            timeout=60,
        )
        assert stored.status_code == 202, stored.text
        deadline = time.monotonic() + 60
        while _devices(served) < 3:  # the read models apply it within a second or two
            assert time.monotonic() < deadline, "the ledger's devices never showed"
            time.sleep(0.2)
        sheet, manifest = root / "labels.png", root / "labels.csv"
        printed = run_hub(
            "labels", "--department", NEONATAL, "--format", "png", "--out", str(sheet),
            "--manifest", str(manifest), "--base-url", served.url, data_dir=data,
        )  # fmt: skip
        assert printed.returncode == 0, printed.stderr[-3000:]
        with manifest.open(encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        image = Image.open(sheet).convert("L")
        g = png_geometry()
        for index, row in enumerate(rows):  # what the camera would read is the manifest's URL
            expected = qr_matrix(row["二维码内容"])
            x0, y0 = g.qr_origin(index)
            read = [
                [
                    image.getpixel((x0 + c * g.module_px + 2, y0 + r * g.module_px + 2)) < 128
                    for c in range(len(expected))
                ]
                for r in range(len(expected))
            ]
            assert read == expected, row
        yield served, rows
    finally:
        served.stop()


def _devices(served: Served) -> int:
    answer = httpx.get(f"{served.url}/assets", params={"department": NEONATAL}, timeout=10)
    return int(answer.json()["total"]) if answer.status_code == 200 else 0


def test_a_nurse_reports_a_fault_from_the_label_and_sees_it_progress(
    browser: Browser,  # noqa: F811
    scan_hub: tuple[Served, list[dict[str, str]]],
) -> None:
    from playwright.sync_api import expect

    served, labels = scan_hub
    label = next(row for row in labels if row["设备名称"] == "呼吸机")
    url = label["二维码内容"]
    assert url.startswith(f"{served.url}/r/{label['资产ID']}?k=")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(url)
        expect(page.locator("#name")).to_have_text("呼吸机")
        expect(page.locator("#ident")).to_contain_text(label["卡片号"])
        expect(page.locator("#no-orders")).to_be_visible()
        # Two taps: a symptom, then submit (the note is optional).
        page.get_by_role("radio", name="报警无法消除").tap()
        page.locator("#submit").tap()
        expect(page.locator("#done")).to_contain_text("已报修，工单号 WO-SCAN-")
        workorder = page.locator("#done").get_attribute("data-workorder")
        assert workorder
        # The page keeps asking until the work-order read model has it (not just this process's
        # note of what it filed): from then on /workorders lists it too.
        mine = page.locator(f'#orders li[data-workorder="{workorder}"]:not([data-pending])')
        expect(mine).to_contain_text("已报修，待受理")
        expect(mine).to_contain_text("我报的")

        listed = httpx.get(f"{served.url}/workorders", params={"status": "open"}, timeout=30).json()
        assert [(o["workorder_id"], o["channel"], o["symptom"]) for o in listed["items"]] == [
            (workorder, "scan", "报警无法消除")
        ]
        assert listed["items"][0]["asset_id"] == label["资产ID"]

        # Later, scanning again shows the same work order's progress.
        page.goto(url)
        expect(page.locator(f'#orders li[data-workorder="{workorder}"]')).to_contain_text("我报的")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # fits the phone: no sideways scrolling
    finally:
        context.close()
    assert errors == []
