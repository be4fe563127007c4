"""Scan-to-report over the real wiring (build_hub + build_api, keys required for the API): the
label's key opens only its department's devices, a report files a `workorder.requested` (channel
scan), a second one merges into it, a resubmitted form is one report, rotation retires old labels,
and floods get 429 with Retry-After."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.auth.roles import Role
from hub.cli import app
from hub.pipeline import drain
from schemas.catalogue import parse_event
from tests.e2e.conftest import REPO, Wired, wired_hub

SAMPLE = REPO / "examples" / "hrp" / "固定资产台账_分院_UTF8_BOM.csv"  # 20 devices, east campus
NEONATAL = "新生儿科"


async def _loaded(w: Wired) -> tuple[str, str, str]:
    """(a neonatal device, the neonatal label key, a lab device)."""
    await w.ingest("hrp", SAMPLE)
    page = (await w.http.get("/assets", params={"limit": 100}, headers=w.auth(Role.ADMIN))).json()["items"]
    neonatal = next(a["asset_id"] for a in page if a["department_name"] == NEONATAL and a["name"] == "呼吸机")
    lab = next(a["asset_id"] for a in page if a["department_name"] == "检验科")
    keys = w.hub.api.scan.keys  # type: ignore[union-attr]
    return neonatal, keys.token(keys.current(NEONATAL)), lab


async def _scan_events(w: Wired) -> list[Any]:
    topic = f"{w.hub.settings.topic_prefix}canonical.workorder.v1"
    consumer = await w.hub.bus.consumer([topic], group="scan-test", from_beginning=True, client_id="t")
    try:
        records = await consumer.poll(max_records=1000, timeout_s=0.5)
    finally:
        await consumer.close()
    return [e for e in (parse_event(r.value) for r in records) if e.source.message_id.startswith("scan:")]


async def test_report_then_merge_then_progress_on_the_page(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub") as w:
        asset, key, lab = await _loaded(w)
        page = await w.http.get(f"/r/{asset}", params={"k": key})
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]  # no external assets
        assert page.headers["cache-control"] == "no-store"
        state = (await w.http.get(f"/r/{asset}/state", params={"k": key})).json()
        assert (state["name"], state["department"], state["status_text"]) == ("呼吸机", NEONATAL, "在用")
        assert "通气/气源异常" in state["symptoms"]  # 6854: the ventilator's category
        assert "patient" not in page.text + str(state)

        first = await w.http.post(
            f"/r/{asset}/reports",
            params={"k": key},
            json={"symptom": "报警无法消除", "note": "夜班", "nonce": "n-first-1"},
        )
        assert first.status_code == 202, first.text
        wo = first.json()["workorder_id"]
        assert first.json()["merged"] is False
        # Before the read model applies it, a second nurse's report still joins it.
        second = await w.http.post(
            f"/r/{asset}/reports", params={"k": key}, json={"symptom": "漏气", "nonce": "n-second"}
        )
        assert second.json() == {**second.json(), "workorder_id": wo, "merged": True}
        again = await w.http.post(
            f"/r/{asset}/reports", params={"k": key}, json={"symptom": "漏气", "nonce": "n-second"}
        )
        assert again.json() == second.json()  # a resubmitted form is the same report
        await drain(w.hub)

        events = await _scan_events(w)
        assert [e.type for e in events] == ["workorder.requested", "workorder.report_added"]
        assert events[0].payload.channel == "scan"
        assert events[0].payload.asset.scheme == "hrp.card"  # the device's card number names it
        listed = (
            await w.http.get("/workorders", params={"status": "open"}, headers=w.auth(Role.VIEWER, NEONATAL))
        ).json()
        assert [(o["workorder_id"], o["channel"], o["symptom"]) for o in listed["items"]] == [
            (wo, "scan", "报警无法消除：夜班")
        ]
        detail = (await w.http.get(f"/workorders/{wo}", headers=w.auth(Role.ADMIN))).json()
        assert [r["symptom"] for r in detail["reports"]] == ["漏气"]
        shown = (await w.http.get(f"/r/{asset}/state", params={"k": key})).json()["orders"]
        assert [(o["workorder_id"], o["status_text"], o["reporters"], o["pending"]) for o in shown] == [
            (wo, "已报修，待受理", 2, False)
        ]

        # Another department's device: the same 404 as an unknown one; the key reads no API route.
        assert (await w.http.get(f"/r/{lab}/state", params={"k": key})).status_code == 404
        assert (await w.http.get("/r/AST-nope/state", params={"k": key})).status_code == 404
        assert (
            await w.http.get("/workorders", headers={"Authorization": f"Bearer {key}"})
        ).status_code == 401
        bad = await w.http.post(
            f"/r/{asset}/reports", params={"k": key}, json={"symptom": "<script>", "nonce": "n-bad-12"}
        )
        assert bad.status_code == 422


async def test_rotation_retires_the_old_labels(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub") as w:
        asset, old, _ = await _loaded(w)
        keys = w.hub.api.scan.keys  # type: ignore[union-attr]
        new = keys.token(keys.rotate(NEONATAL, grace=timedelta(0)))
        refused = await w.http.get(f"/r/{asset}", params={"k": old})
        assert refused.status_code == 403
        assert "更换标签" in refused.text
        assert (await w.http.get(f"/r/{asset}", params={"k": new})).status_code == 200
        assert (await w.http.get(f"/r/{asset}")).status_code == 401


async def test_reports_are_rate_limited_per_client_with_retry_after(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings={"scan_reports_per_client_per_minute": 2}) as w:
        asset, key, _ = await _loaded(w)
        answers = [
            await w.http.post(
                f"/r/{asset}/reports", params={"k": key}, json={"symptom": "漏气", "nonce": f"nonce-{i:03d}"}
            )
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert 0 < int(answers[2].headers["retry-after"]) <= 60


def test_label_commands_explain_what_is_missing_and_rotate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hub labels` without a CJK font or devices says so; `hub keys rotate-report` retires the key."""
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "hub"))
    out = tmp_path / "labels.pdf"
    cli = CliRunner()
    with monkeypatch.context() as m:
        m.setenv("HUB_LABEL_FONT", str(tmp_path / "x.ttc"))
        no_font = cli.invoke(app, ["labels", "--department", NEONATAL, "--out", str(out)])
    assert (no_font.exit_code, "HUB_LABEL_FONT" in no_font.output) == (2, True), no_font.output
    empty = cli.invoke(app, ["labels", "--department", NEONATAL, "--out", str(out)])
    assert empty.exit_code in (1, 2), empty.output  # 2 only where no CJK font is installed
    assert not out.exists()
    for _ in range(2):
        assert cli.invoke(app, ["keys", "rotate-report", "--department", NEONATAL]).exit_code == 0
    listed = cli.invoke(app, ["keys", "report-list"], env={"COLUMNS": "200"})
    assert (listed.output.count("rotated out"), listed.output.count("active")) == (1, 1), listed.output
