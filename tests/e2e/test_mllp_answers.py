"""What the hub answers is what it does, over real MLLP on loopback, a dropped file and HTTP.

One hub (SQLite archive, embedded bus) with its MLLP listener as `hub serve` starts it and the API
under uvicorn. An AR'd message (empty MSH-10) is never applied on any transport, and its corrected
resend applies once; a 13-message batch in one frame is answered and deduplicated per MSH-10; an
unknown ward keeps the asset.used, department unknown, with a retryable note whose field is the
one the ACK's ERR names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters.his.decode import decode
from hub.api.app import build_api
from hub.bootstrap import build_hub
from hub.cli.operate import _start_mllp
from hub.pipeline import drain, ingest_path
from hub.translation.retry import HubDeadLetters
from tests.e2e.conftest import REPO, free_port
from tests.e2e.test_ingest_core import CONTROL_ID, DFT_CR, Running, Sender, consumed_on_bus, settings_for

HIS = REPO / "examples" / "his"
NO_ID = DFT_CR.replace(b"|" + CONTROL_ID + b"|", b"||")  # the same charges, MSH-10 left empty
ORU = (HIS / "04_oru_r01_ventilator_obx18.hl7").read_bytes().replace(b"\n", b"\r")
WARD_X = ORU.replace(b"PV1|1|I|RICU^8^01", b"PV1|1|I|WARD-X^8^01")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """MLLP and the HTTP API each on a loopback port, a site mapping folder the test may fill."""
    (tmp_path / "mappings").mkdir()
    async with build_hub(settings_for(tmp_path, mapping_dir=tmp_path / "mappings")) as hub:
        mllp = await _start_mllp(hub)
        port = free_port()
        api = uvicorn.Server(
            uvicorn.Config(build_api(hub), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        serving = asyncio.create_task(api.serve())
        try:
            for _ in range(200):  # bounded: until uvicorn is listening
                if api.started or serving.done():
                    break
                await asyncio.sleep(0.05)
            assert api.started, "the API did not start"
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield Running(hub, hub.settings.mllp_port, client)
        finally:
            api.should_exit = True
            await asyncio.wait_for(serving, timeout=30)
            mllp.close()


def lines(ack: bytes, segment: str) -> list[list[str]]:
    text = decode(ack).text.replace("\n", "\r")
    return [s.split("|") for s in text.split("\r") if s.startswith(segment)]


async def send(port: int, *payloads: bytes) -> list[bytes]:
    sender = await Sender.open(port)
    try:
        return [await sender.send(p) for p in payloads]
    finally:
        await sender.close()


async def on_topic(running: Running, topic: str, event_type: str) -> list[dict[str, Any]]:
    reader = await running.hub.bus.consumer([topic], group=None)
    out: list[dict[str, Any]] = []
    while batch := await reader.poll(max_records=1000, timeout_s=0.3):
        out += [json.loads(r.value) for r in batch if f'"{event_type}"'.encode() in r.value]
    await reader.close()
    return out


class TestRefusedIsNotApplied:
    async def test_ar_over_mllp_is_never_applied_and_the_corrected_resend_applies_once(
        self, running: Running
    ) -> None:
        """Empty MSH-10 over MLLP: AR naming MSH-10, dead-lettered, nothing applied; the corrected resend: AA, applied once."""
        hub = running.hub
        refused, again = await send(running.port, NO_ID, NO_ID)
        assert lines(refused, "MSA")[0][1] == "AR"
        assert lines(refused, "ERR")[0][2] == "MSH^1^10"
        assert again == refused, "the same bytes again get the stored AR"
        await drain(hub)
        assert await consumed_on_bus(hub) == []
        (letter,) = await hub.dead_letters.query(system="his")
        assert (letter.code, letter.location.segment, letter.location.field) == (
            "missing_control_id",
            "MSH",
            "MSH-10",
        )
        assert (await hub.archive.status(letter.raw_ref)).status == "dead_lettered"  # kept, retryable

        first, resend = await send(running.port, DFT_CR, DFT_CR)
        assert lines(first, "MSA")[0][1:3] == ["AA", CONTROL_ID.decode()]
        assert resend == first
        await drain(hub)
        assert len(await consumed_on_bus(hub)) == 2, "the message's two charges, once"

    async def test_same_rule_for_a_dropped_file_and_http(self, running: Running, tmp_path: Path) -> None:
        """Empty MSH-10 in a file and over HTTP: kept, dead-lettered, never applied; corrected, applied once on any door."""
        hub = running.hub
        path = tmp_path / "charges_no_id.hl7"
        path.write_bytes(NO_ID)
        await ingest_path(hub, "his", path)
        r = await running.client.post("/ingest/his", content=NO_ID.replace(b"\r", b"\r\n"))
        assert r.status_code == 202, r.text
        await drain(hub)
        assert await consumed_on_bus(hub) == []
        letters = await hub.dead_letters.query(system="his")
        assert [d.code for d in letters] == ["missing_control_id", "missing_control_id"]

        fixed = tmp_path / "charges.hl7"
        fixed.write_bytes(DFT_CR.replace(b"\r", b"\n"))
        await ingest_path(hub, "his", fixed)
        r = await running.client.post("/ingest/his", content=DFT_CR)
        assert r.json()["duplicate"] is True
        (ack,) = await send(running.port, DFT_CR)
        assert lines(ack, "MSA")[0][1] == "AA"
        await drain(hub)
        assert len(await consumed_on_bus(hub)) == 2


class TestBatchFrame:
    async def test_thirteen_messages_in_one_frame_are_answered_and_deduplicated_per_msh10(
        self, running: Running
    ) -> None:
        """A FHS/BHS batch of 13 in one MLLP frame: 13 ACKs in order; an earlier message is not applied again, a conflict is AE."""
        hub = running.hub
        ids = [f"BATCH{n:02}".encode() for n in range(1, 14)]
        messages = [DFT_CR.replace(CONTROL_ID, cid) for cid in ids]
        earlier_conflict = messages[4].replace(b"2680.00|2680.00", b"2690.00|2690.00")
        assert earlier_conflict != messages[4]
        await send(running.port, messages[0], earlier_conflict)  # BATCH01 as is; BATCH05 with other content
        batch = b"FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r" + b"".join(messages) + b"BTS|13\rFTS|1\r"
        answer, again = await send(running.port, batch, batch)

        msas = lines(answer, "MSA")
        assert [m[2] for m in msas] == [cid.decode() for cid in ids]
        assert [m[1] for m in msas] == ["AA"] * 4 + ["AE"] + ["AA"] * 8
        assert lines(answer, "BTS") == [["BTS", "13"]]
        assert any(e[2] == "MSH^1^10" and e[3].startswith("205") for e in lines(answer, "ERR"))
        assert again == answer, "the same frame again gets the same answer"
        await drain(hub)
        # 2 charges per message: BATCH01 and BATCH05 once each before, the 11 others of the batch.
        assert len(await consumed_on_bus(hub)) == 2 * 13


class TestUnknownWard:
    async def test_unknown_ward_keeps_the_use_with_a_note_the_err_names_and_a_retry_resolves(
        self, running: Running, tmp_path: Path
    ) -> None:
        """ORU^R01 with a ward not in the mapping: AA + ERR(W) PV1^1^3, asset.used kept (department unknown), a note; fixed + retried: resolved, applied once."""
        hub = running.hub
        (ack,) = await send(running.port, WARD_X)
        assert lines(ack, "MSA")[0][1] == "AA"
        errs = lines(ack, "ERR")  # one per device (a ventilator and a monitor on that ward)
        assert [(e[2], e[4]) for e in errs] == [("PV1^1^3", "W")] * 2
        await drain(hub)
        notes = await hub.dead_letters.query(system="his", kind="note")
        assert {(n.code, n.location.segment, n.location.field) for n in notes} == {
            ("department_unknown", "PV1", "PV1-3")
        }
        assert [n.position for n in notes] == ["OBX:1#PV1-3", "OBX:5#PV1-3"]
        assert await hub.dead_letters.count(system="his") == 0, "notes are not failures"
        used = await on_topic(running, "canonical.asset.v1", "asset.used")
        assert [u["payload"]["department"] for u in used] == [None, None]

        (tmp_path / "mappings" / "his.yaml").write_text(
            'extends: default\nlocations:\n  WARD-X: {department: "0202", location: 呼吸科八病区}\n',
            encoding="utf-8",
        )
        for _ in range(50):  # bounded: the hub looks at the mapping file once a second
            if hub.worker("his").mappings.current().place("WARD-X") is not None:
                break
            await asyncio.sleep(0.1)
        outcome = await HubDeadLetters(hub).retry(system="his", raw_ref=None)
        assert (outcome.retried, outcome.resolved, outcome.still_open) == (1, 2, 0)
        await drain(hub)
        # The originals stay the log's (never republished changed under their ids); a correction each.
        copies = await on_topic(running, "canonical.asset.v1", "asset.used")
        assert [c["payload"]["department"] for c in copies] == [None, None]
        fixes = await on_topic(running, "canonical.asset.v1", "asset.usage_corrected")
        assert sorted(f["payload"]["corrects"] for f in fixes) == sorted(u["event_id"] for u in used)
        assert [f["payload"]["usage"]["department"]["code"] for f in fixes] == ["0202", "0202"]
        assert [f["payload"]["previous"]["department"] for f in fixes] == [None, None]
        await HubDeadLetters(hub).retry(system="his", raw_ref=notes[0].raw_ref)  # again: nothing new
        await drain(hub)
        assert len(await on_topic(running, "canonical.asset.v1", "asset.usage_corrected")) == 2
        again = await on_topic(running, "canonical.asset.v1", "asset.used")
        assert [c["payload"]["department"] for c in again] == [None, None]


class TestOtherAnswers:
    async def test_unmapped_type_with_empty_msh10_is_aa(self, running: Running) -> None:
        """An ADT^A01 with an empty MSH-10 applies nothing anyway: archived, counted, AA (as README promises)."""
        adt = (HIS / "11_adt_a01_admission.hl7").read_bytes().replace(b"\n", b"\r")
        head = adt.split(b"\r", 1)[0].split(b"|")
        head[9] = b""
        (ack,) = await send(running.port, b"|".join(head) + b"\r" + adt.split(b"\r", 1)[1])
        assert lines(ack, "MSA")[0][:2] == ["MSA", "AA"]
        await drain(running.hub)
        assert await running.hub.dead_letters.query(system="his") == []

    async def test_big5_under_a_utf8_label_is_ae_and_not_applied_until_retried(
        self, running: Running, tmp_path: Path
    ) -> None:
        """Big5 bytes labelled UNICODE UTF-8 over MLLP: AE naming MSH-18 and the likeliest charset, nothing applied; `encoding: big5` + retry applies it."""
        big5 = (
            "\r".join(  # noqa: FLY002 - one segment a line reads as the message
                (
                    "MSH|^~\\&|MONITOR|臺北榮總|HUB|HUB|20240612120500||ORU^R01|TW-0001|P|2.5||||||UNICODE UTF-8",
                    "PID|1||TW123^^^VGH^MR||陳曉明^CHEN HSIAO MING||19720815|F",
                    "PV1|1|I|RICU^8^01^^^^^^呼吸照護病房",
                    "OBR|1|VM-1^HIS||VENT-MON^呼吸器監測^LOCAL|||20240612080000",
                    "OBX|1|NM|VT^潮氣量^LOCAL||450|mL|||||F|||20240612080000||||VENT-0032^HIS^^L",
                    "NTE|1||病人呼吸狀態穩定，繼續觀察並記錄生命徵象",
                )
            ).encode("big5")
            + b"\r"
        )
        (ack,) = await send(running.port, big5)
        assert lines(ack, "MSA")[0][1] == "AE"
        assert lines(ack, "ERR")[0][2] == "MSH^1^18"
        await drain(running.hub)
        (letter,) = await running.hub.dead_letters.query(system="his")
        assert letter.code == "charset_mojibake"
        assert "likeliest charset: big5" in letter.reason
        assert await on_topic(running, "canonical.asset.v1", "asset.used") == []

        # The integrator names the sender's real charset; a retry applies the kept message.
        (tmp_path / "mappings" / "his.yaml").write_text(
            "extends: default\nencoding: big5\n", encoding="utf-8"
        )
        for _ in range(50):  # bounded: the hub looks at the mapping file once a second
            if running.hub.worker("his").mappings.current().encoding == "big5":
                break
            await asyncio.sleep(0.1)
        outcome = await HubDeadLetters(running.hub).retry(system="his", raw_ref=None)
        assert (outcome.resolved, outcome.still_open) == (1, 0)
        await drain(running.hub)
        (used,) = await on_topic(running, "canonical.asset.v1", "asset.used")
        assert used["payload"]["department"]["code"] == "0202"


async def test_ack_after_storage_refuses_an_empty_msh10_too(tmp_path: Path) -> None:
    """HUB_MLLP_ACK_AFTER=storage answers AA once stored, but an empty MSH-10 AR before translating: never applied."""
    async with build_hub(settings_for(tmp_path, mllp_ack_after="storage")) as hub:
        refused = await hub.mllp.handle(NO_ID, {})
        accepted = await hub.mllp.handle(DFT_CR, {})
        assert (lines(refused, "MSA")[0][1], lines(accepted, "MSA")[0][1]) == ("AR", "AA")
        await drain(hub)
        assert len(await consumed_on_bus(hub)) == 2
        assert [d.code for d in await hub.dead_letters.query(system="his")] == ["missing_control_id"]
