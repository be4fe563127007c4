"""Channels and metrics after a mixed ingest (real wiring: build_hub + build_api, a real MLLP socket).

MLLP messages (one answered AE), an HRP export with one bad row, a FHIR Device over HTTP: GET
/metrics parsed with prometheus_client's own parser must count per channel exactly what was
sent and what the sender was answered; GET /channels and `hub channels` show the same, and the
listener state `hub serve` would report.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from hub.auth.roles import Role
from hub.channels import channels, report_forever, served_here
from hub.cli.channels_cmd import channel_table
from hub.cli.operate import _start_mllp
from hub.pipeline import drain, ingest_path
from tests.e2e.conftest import REPO, Wired, free_port, run_hub, wired_hub
from tests.e2e.test_identifier_namespaces import send_mllp

if TYPE_CHECKING:
    from pathlib import Path

HIS = REPO / "examples" / "his"
MLLP_FILES = ("07_esu_u01_ventilator_in_use.hl7", "08_esu_u01_emergency_stop.hl7", "11_adt_a01_admission.hl7")
AE_FILE = "09_esu_u01_unknown_state.hl7"  # EQU-3 'XX' is not in the mapping: dead letter, AE
FHIR_DEVICE = REPO / "examples" / "fhir" / "device-ventilator-icu.json"
HEADER = "序号,资产编号,资产名称,规格型号,品牌,出厂编号,使用科室,存放地点,启用日期,原值,累计折旧,净值,资产状态,资产分类,资金来源,使用年限,UDI\n"
ROWS = (
    "1,ZC-2024-90001,呼吸机,SV300,迈瑞,SV24000001,重症医学科,ICU 3床,2024-03-01,185000.00,0.00,185000.00,在用,6854 呼吸设备,财政拨款,6,\n"
    "2,ZC-2024-90002,监护仪,BeneVision N12,迈瑞,BN24000002,重症医学科,ICU 4床,2024年13月45日,52000.00,0.00,52000.00,在用,6821 监护设备,自筹资金,6,\n"
)  # the second row's 启用日期 is no date: that row is dead-lettered, the first translated


def ack_code(ack: bytes) -> str:
    msa = next(seg for seg in ack.split(b"\r") if seg.startswith(b"MSA"))
    return msa.split(b"|")[1].decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels (parsed by prometheus_client)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def mixed_ingest(w: Wired, tmp_path: Path) -> dict[str, Any]:
    """Send everything; return what was sent and what the MLLP sender was answered."""
    sent: dict[str, Any] = {"mllp_bytes": 0, "acks": {"AA": 0, "AE": 0, "AR": 0}}
    server = await _start_mllp(w.hub)
    try:
        for name in (*MLLP_FILES, AE_FILE):
            payload = (HIS / name).read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
            ack = await send_mllp(w.hub.settings.mllp_port, payload)
            sent["acks"][ack_code(ack)] += 1
    finally:
        server.close()
        await server.wait_closed()
    export = tmp_path / "固定资产台账_新增.csv"
    export.write_bytes((HEADER + "".join(ROWS)).encode("gb18030"))
    sent["file_bytes"] = export.stat().st_size
    await ingest_path(w.hub, "hrp", export)
    device = FHIR_DEVICE.read_bytes()
    headers = {"Content-Type": "application/fhir+json"}
    if w.hub.settings.auth_required:
        headers |= w.auth(Role.INTEGRATOR)
    posted = await w.http.post("/fhir/Device", content=device, headers=headers)
    assert posted.status_code in {200, 201}, posted.text
    sent["fhir_bytes"] = len(device)
    await drain(w.hub)
    return sent


async def test_metrics_count_per_channel_what_was_sent(tmp_path: Path) -> None:
    """Received, bytes, ACK codes, dead letters and translations per channel equal the mixed ingest's."""
    async with wired_hub(tmp_path / "hub", settings={"auth": "off", "mllp_port": free_port()}) as w:
        sent = await mixed_ingest(w, tmp_path)
        scraped = await w.http.get("/metrics")
    assert scraped.status_code == 200
    found = samples(scraped.text)
    mllp = {"system": "his", "transport": "mllp"}
    n = len(MLLP_FILES) + 1
    assert sent["acks"] == {"AA": len(MLLP_FILES), "AE": 1, "AR": 0}  # what the sender was told
    assert value(found, "hub_channel_received_total", **mllp) == n
    for code, count in sent["acks"].items():
        assert value(found, "hub_channel_acks_total", **mllp, code=code) == count
    assert value(found, "hub_channel_dead_lettered_total", **mllp) == 1
    assert value(found, "hub_channel_translated_total", **mllp) == n - 1
    assert value(found, "hub_channel_messages", **mllp, status="archived_only") == 1  # the ADT^A01
    assert value(found, "hub_channel_messages", **mllp, status="pending") == 0
    hrp = {"system": "hrp", "transport": "file"}
    assert value(found, "hub_channel_received_total", **hrp) == 1
    assert value(found, "hub_channel_received_bytes_total", **hrp) == sent["file_bytes"]
    assert value(found, "hub_channel_rows_dead_lettered_total", **hrp) == 1
    assert value(found, "hub_channel_messages", **hrp, status="dead_lettered") == 1
    fhir = {"system": "fhir", "transport": "http"}
    assert value(found, "hub_channel_received_total", **fhir) == 1
    assert value(found, "hub_channel_received_bytes_total", **fhir) == sent["fhir_bytes"]
    assert value(found, "hub_channel_translated_total", **fhir) == 1
    assert value(found, "hub_dead_letters_open", system="his") == 1
    assert value(found, "hub_dead_letters_open", system="hrp") == 1
    assert value(found, "hub_archive_commit_seconds_count") >= 1
    assert value(found, "hub_translate_seconds_count", system="hrp") == 1
    assert value(found, "hub_archive_size_bytes") > 0
    assert any(name == "hub_ledger_head" for name, _ in found)
    dashboard = (REPO / "deploy" / "grafana-hub-channels.json").read_text(encoding="utf-8")
    named = set(re.findall(r"hub_[a-z_]+", dashboard))
    assert named
    exposed = {f.name for f in text_string_to_metric_families(scraped.text)} | {name for name, _ in found}
    assert named <= exposed  # the dashboard queries only metrics the hub exposes


async def test_channels_route_and_cli_show_counts_state_and_the_last_hour(tmp_path: Path) -> None:
    """GET /channels and `hub channels` agree with the archive; listeners reported by a serving process count."""
    data = tmp_path / "hub"
    async with wired_hub(data, settings={"mllp_port": free_port()}) as w:
        sent = await mixed_ingest(w, tmp_path)
        stop = asyncio.Event()
        here = lambda: served_here(w.hub, {"ingest", "api"}, mllp=lambda: True, inbox=True)  # noqa: E731
        reporter = asyncio.create_task(report_forever(w.hub, stop, here, every_s=0.05))
        await asyncio.sleep(0.2)
        integrator = w.auth(Role.INTEGRATOR)
        listed = await w.http.get("/channels", headers=integrator)
        assert listed.status_code == 200, listed.text
        by_name = {c["channel"]: c for c in listed.json()["items"]}
        scoped = await w.http.get("/channels", headers=w.auth(Role.INTEGRATOR, department="重症医学科"))
        viewer = await w.http.get("/channels", headers=w.auth(Role.VIEWER))
        stop.set()
        await reporter
        after = {c["channel"]: c for c in (await w.http.get("/channels", headers=integrator)).json()["items"]}
        found = await channels(w.hub)
    assert scoped.status_code == 403  # hospital-wide counts: never partial numbers for a department
    assert viewer.status_code == 403
    his = by_name["his.mllp"]
    assert his["counts"]["received"] == len(MLLP_FILES) + 1
    assert (his["counts"]["ack_aa"], his["counts"]["ack_ae"]) == (sent["acks"]["AA"], sent["acks"]["AE"])
    assert his["state"] == "erroring"  # listening, with a message dead-lettered in the last minutes
    assert "dead-lettered" in (his["last_error"] or "")
    assert sum(his["received_last_hour"]) == len(MLLP_FILES) + 1
    assert len(his["received_last_hour"]) == 60
    assert by_name["hrp.file"]["state"] == "erroring"
    assert by_name["hrp.file"]["counts"]["dead_lettered"] == 1
    assert by_name["fhir.http"]["state"] == "listening"
    assert by_name["fhir.http"]["counts"]["translated"] == 1
    assert by_name["spd.file"]["state"] == "listening"
    assert by_name["spd.file"]["counts"]["received"] == 0
    assert after["spd.file"]["state"] == "stopped"  # the process said it stopped
    assert after["spd.http"]["state"] == "listening"  # the API answering is its HTTP ingest

    shown = run_hub("channels", "--json", data_dir=data)
    assert shown.returncode == 0, shown.stderr[-2000:]
    rows = {r["channel"]: r for r in map(json.loads, shown.stdout.splitlines())}
    assert rows["his.mllp"]["received"] == len(MLLP_FILES) + 1
    assert rows["his.mllp"]["ack"] == sent["acks"]
    assert rows["hrp.file"]["dead_lettered"] == 1
    wide = Console(width=250, record=True)
    wide.print(channel_table(found))
    table = wide.export_text()
    assert "his.mllp" in table
    assert "hrp.file" in table
    assert "1/0/0" not in table  # AA/AE/AR as answered: 3/1/0
    assert f"{sent['acks']['AA']}/{sent['acks']['AE']}/0" in table
