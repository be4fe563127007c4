"""Device health through the real wiring: a vendor log and an HRP ledger -> warnings on the golden
record, a work order, a notification, the availability flag; department scope."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from bench.telemetry_synth import generate, write_csv
from hub.auth.roles import Role

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import Wired

ADM = Role.ADMIN
EUI = "0012A3FFFE000001"
LEDGER = (
    "XX市第一人民医院固定资产台账\n"
    "序号,资产编号,资产名称,规格型号,生产厂家,出厂编号,使用科室,存放地点,购置日期,原值,累计折旧,净值,资产状态,资产分类,资金来源,使用年限,UDI\n"
    '1,ZC-VENT-0001,呼吸机,SV-800,某医疗,SV8-20190001,重症医学科,ICU 3床,2019/05/04,"268,000.00","0.00","268,000.00",在用,6854,财政拨款,8,\n'
)


def _log(tmp_path: Path) -> Path:
    """Eight ventilators over 40 days, nothing wrong except E-217 on three days of the first one."""
    fleet = generate(8, 40, 4, share=0.0)
    last = max(r.at for r in fleet.rows)
    bad = {last - timedelta(days=d) for d in (1, 4, 7)}
    fleet.rows = [
        dataclasses.replace(r, errors=("E-217",)) if r.eui64 == EUI and r.at in bad else r for r in fleet.rows
    ]
    path = tmp_path / "device-log.csv"
    write_csv(fleet, path)
    return path


async def _loaded(w: Wired, tmp_path: Path) -> str:
    ledger = tmp_path / "固定资产台账_呼吸机.csv"
    ledger.write_text(LEDGER, encoding="utf-8-sig")
    await w.ingest("hrp", ledger)
    found = (await w.http.get("/assets", headers=w.auth(ADM))).json()
    (golden,) = [a["asset_id"] for a in found["items"] if a["name"] == "呼吸机"]
    link = {"scheme": "eui64", "value": EUI, "actor": "王工"}
    answer = await w.http.post(f"/assets/{golden}/identifiers", json=link, headers=w.auth(ADM))
    assert answer.status_code < 300, answer.text
    await w.ingest("devlog", _log(tmp_path))
    return str(golden)


async def test_a_recurring_error_warns_on_the_golden_record_and_files_a_work_order(
    wired: Wired, tmp_path: Path
) -> None:
    """E-217 on three days: an open `error-recurrence` warning on the HRP asset, a work order, a notification."""
    golden = await _loaded(wired, tmp_path)
    body = (
        await wired.http.get("/devices/health", params={"warned": "true"}, headers=wired.auth(ADM))
    ).json()
    (device,) = body["items"]
    assert (device["asset_id"], device["provisional"], device["value"]) == (golden, False, EUI)
    (warning,) = device["warnings"]
    assert warning["rule_id"] == "error-recurrence"
    assert "E-217" in warning["reason"]
    assert warning["workorder_id"]
    order = await wired.http.get(f"/workorders/{warning['workorder_id']}", headers=wired.auth(ADM))
    assert order.status_code == 200, order.text
    assert order.json()["channel"] == "telemetry"
    record = (await wired.http.get(f"/assets/{golden}", headers=wired.auth(ADM))).json()
    assert record["telemetry"]["usage_hours"] == device["usage_hours"]
    assert [w.split(":")[0] for w in record["telemetry"]["early_warnings"]] == ["error-recurrence"]
    inbox = (await wired.http.get("/notifications", params={"view": "all"}, headers=wired.auth(ADM))).json()
    assert any(n["title"].startswith("设备预警（故障码反复出现）") for n in inbox["items"])


async def test_the_availability_board_flags_the_warned_device(wired: Wired, tmp_path: Path) -> None:
    """`/availability/devices` marks the ventilator with its open warning's rule."""
    golden = await _loaded(wired, tmp_path)
    body = (
        await wired.http.get("/availability/devices", params={"type": "呼吸机"}, headers=wired.auth(ADM))
    ).json()
    (row,) = [i for i in body["items"] if i["asset_id"] == golden]
    assert row["early_warning"] is True
    assert row["early_warnings"] == ["error-recurrence"]


async def test_telemetry_reads_by_any_id_and_respects_department_scope(wired: Wired, tmp_path: Path) -> None:
    """By the golden id or the EUI-64: the 31 records of the raw window (the latest day and the 30
    before it; the 9 older are rolled up); the ER's key gets 404, the ICU's the records."""
    golden = await _loaded(wired, tmp_path)
    by_golden = (await wired.http.get(f"/assets/{golden}/telemetry", headers=wired.auth(ADM))).json()
    by_eui = (await wired.http.get(f"/assets/{EUI}/telemetry", headers=wired.auth(ADM))).json()
    assert by_golden["total"] == by_eui["total"] == 31
    assert by_golden["raw_since"] == by_golden["items"][-1]["at"]
    assert by_golden["items"][0]["at"] > by_golden["items"][-1]["at"]
    er = await wired.http.get(f"/assets/{golden}/telemetry", headers=wired.auth(ADM, "急诊科"))
    icu = await wired.http.get(f"/assets/{golden}/telemetry", headers=wired.auth(ADM, "重症医学科"))
    assert (er.status_code, icu.status_code) == (404, 200)
    scoped = await wired.http.get("/devices/health", headers=wired.auth(ADM, "急诊科"))
    assert {i["dept_name"] for i in scoped.json()["items"]} <= {"急诊科"}


async def test_devices_the_registry_does_not_know_are_listed_provisional(
    wired: Wired, tmp_path: Path
) -> None:
    """The seven ventilators no ledger names are kept under their EUI-64, listed as provisional."""
    golden = await _loaded(wired, tmp_path)
    body = (await wired.http.get("/devices/health", headers=wired.auth(ADM))).json()
    assert body["total"] == 8
    known = [i for i in body["items"] if not i["provisional"]]
    assert [i["asset_id"] for i in known] == [golden]
    others = [i for i in body["items"] if i["provisional"]]
    assert len(others) == 7
    assert all(i["asset_id"] is None and i["scheme"] == "eui64" for i in others)


async def test_the_series_charts_the_whole_history_from_rollups_and_the_raw_window(
    wired: Wired, tmp_path: Path
) -> None:
    """40 days by day: one bucket a day, the 9 rolled-up days and the 31 raw ones alike, each the
    day's reading as the device log wrote it; by hour over the last week; scoped like the records."""
    golden = await _loaded(wired, tmp_path)
    logged = sorted((r.at, r) for r in generate(8, 40, 4, share=0.0).rows if r.eui64 == EUI)
    url = f"/assets/{golden}/telemetry/series"
    params = {"metric": ["battery_pct", "alarm_count"], "from": "2024-03-01", "to": "2024-04-09"}
    body = (await wired.http.get(url, params=params, headers=wired.auth(ADM))).json()
    assert (body["grain"], body["from"], body["to"]) == ("day", "2024-03-01", "2024-04-09")
    battery, alarms = body["series"]
    assert (battery["metric"], battery["unit"], alarms["metric"]) == ("battery_pct", "%", "alarm_count")
    assert [b["mean"] for b in battery["buckets"]] == [r.battery_pct for _, r in logged]
    assert [b["sum"] for b in alarms["buckets"]] == [r.alarms for _, r in logged]
    assert {b["count"] for b in battery["buckets"]} == {1}
    week = (await wired.http.get(url, params={"from": "2024-04-03"}, headers=wired.auth(ADM))).json()
    assert week["grain"] == "hour"
    assert [s["metric"] for s in week["series"]] == ["battery_pct", "alarm_count", "usage_hours"]
    assert len(week["series"][0]["buckets"]) == 7  # one record a day, at 23:50
    er = await wired.http.get(url, headers=wired.auth(ADM, "急诊科"))
    too_long = await wired.http.get(
        url, params={"from": "2024-01-01", "grain": "hour"}, headers=wired.auth(ADM)
    )
    assert (er.status_code, too_long.status_code) == (404, 422)
