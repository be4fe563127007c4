"""The ingest core through the real wiring: store first, one safe translate, one dedup rule.

In-process: `build_hub` on a real data dir (SQLite archive, embedded bus, SQLite read models),
the MLLP listener as `hub serve` starts it (hub.cli.operate._start_mllp) and the API under
uvicorn, each on a loopback port; files through `ingest_path` (what the drop folder and
`hub ingest` call). The pipeline is drained as `hub serve` would run it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters.his.decode import decode
from adapters.his.mllp import MllpFramer, frame
from hub.api.app import build_api
from hub.bootstrap import Hub, build_hub
from hub.cli.operate import _start_mllp
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from tests.e2e.conftest import REPO, free_port

HIS = REPO / "examples" / "his"
DFT = (HIS / "01_dft_p03_ptca_prt_utf8.hl7").read_bytes()  # LF line endings, 2 FT1 charges
DFT_CR = DFT.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
DFT_CRLF = DFT_CR.replace(b"\r", b"\r\n")
CONTROL_ID = b"DFT20240612001"


@dataclass
class Running:
    hub: Hub
    port: int
    client: httpx.AsyncClient


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "hub", mllp_port=free_port(), **extra)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """MLLP and the HTTP API each on a loopback port, both in front of one hub."""
    async with build_hub(settings_for(tmp_path)) as hub:
        mllp = await _start_mllp(hub)
        port = free_port()
        api = uvicorn.Server(
            uvicorn.Config(
                build_api(hub),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="on",
            )
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


class Sender:
    """One MLLP connection: send a frame, read its ACK."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.framer = reader, writer, MllpFramer()

    @classmethod
    async def open(cls, port: int) -> Sender:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, payload: bytes) -> bytes:
        self.writer.write(frame(payload))
        await self.writer.drain()
        for _ in range(100):
            data = await asyncio.wait_for(self.reader.read(65536), timeout=30)
            assert data, "the hub closed the connection instead of answering"
            if got := self.framer.feed(data):
                return got[0]
        raise AssertionError("no complete ACK")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def msa(ack: bytes) -> list[str]:
    line = next(s for s in decode(ack).text.replace("\n", "\r").split("\r") if s.startswith("MSA"))
    return line.split("|")


def raising(message: str) -> Callable[..., Any]:
    def translate(*_args: Any) -> Any:
        raise RuntimeError(message)

    return translate


async def consumed_on_bus(hub: Hub) -> list[dict[str, Any]]:
    reader = await hub.bus.consumer(["canonical.inventory.v1"], group=None)
    out: list[dict[str, Any]] = []
    while batch := await reader.poll(max_records=1000, timeout_s=0.3):
        out += [json.loads(r.value) for r in batch if b'"inventory.consumed"' in r.value]
    await reader.close()
    return out


class TestTranslatorThatRaises:
    """A translator bug is a dead letter naming the exception, on every transport; nothing is lost."""

    BUG = "translator bug for the test"

    async def test_over_mllp_archived_dead_lettered_ae_and_connection_stays(
        self, running: Running, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        worker = running.hub.worker("his")
        monkeypatch.setattr(worker, "adapter", replace(worker.adapter, translate=raising(self.BUG)))
        sender = await Sender.open(running.port)
        first = await sender.send(DFT_CR)
        second = await sender.send(DFT_CR.replace(CONTROL_ID, b"DFT20240612999"))  # same connection
        resend = await sender.send(DFT_CR)
        await sender.close()

        assert msa(first)[1:3] == ["AE", CONTROL_ID.decode()]
        assert b"ERR" in first
        assert b"RuntimeError" in first
        assert msa(second)[1] == "AE", "the connection stayed usable after the translator raised"
        assert resend == first, "an exact resend gets the stored ACK"
        counts = (await running.hub.archive.reconciliation())["his"]
        assert (counts["received"], counts["resends"]) == (2, 1)
        letters = await running.hub.dead_letters.query(system="his")
        assert len(letters) == 2
        assert all(d.code == "translator_error" for d in letters)
        assert all("RuntimeError" in d.reason and self.BUG in d.reason for d in letters)
        await drain(running.hub)
        assert await consumed_on_bus(running.hub) == []
        assert (await running.hub.archive.reconciliation())["his"]["dead_lettered"] == 2

    async def test_over_http_and_as_a_file(
        self, running: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        worker = running.hub.worker("his")
        monkeypatch.setattr(worker, "adapter", replace(worker.adapter, translate=raising(self.BUG)))
        r = await running.client.post("/ingest/his", content=DFT, params={"filename": "charge.hl7"})
        assert r.status_code == 202, r.text
        path = tmp_path / "other.hl7"
        path.write_bytes(DFT_CR.replace(CONTROL_ID, b"DFT20240612777"))
        stored = await ingest_path(running.hub, "his", path)
        await drain(running.hub)

        for ref in (r.json()["raw_ref"], stored.record.raw_ref):
            status = await running.hub.archive.status(ref)
            assert status is not None
            assert status.status == "dead_lettered"
        letters = await running.hub.dead_letters.query(system="his")
        by_unit = {d.location.file: d for d in letters}
        assert set(by_unit) == {"charge.hl7", "other.hl7"}
        assert all(d.code == "translator_error" and self.BUG in d.reason for d in letters)
        assert "other.hl7" in by_unit["other.hl7"].reason, "the dead letter names the unit"

    async def test_over_fhir_answers_400_naming_it_and_keeps_the_resource(
        self, running: Running, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        worker = running.hub.worker("fhir")
        monkeypatch.setattr(worker, "adapter", replace(worker.adapter, translate=raising(self.BUG)))
        device = (REPO / "examples" / "fhir" / "device-ventilator-icu.json").read_bytes()
        r = await running.client.post(
            "/fhir/Device", content=device, headers={"Content-Type": "application/fhir+json"}
        )
        assert r.status_code == 400, r.text
        assert "RuntimeError" in r.text
        await drain(running.hub)
        (letter,) = await running.hub.dead_letters.query(system="fhir")
        assert letter.code == "translator_error"
        assert letter.raw_ref == r.headers["X-Hub-Raw-Ref"]


class TestOneDedupRule:
    async def test_one_dft_by_mllp_file_renamed_file_and_http_is_applied_once(
        self, running: Running, tmp_path: Path
    ) -> None:
        hub = running.hub
        sender = await Sender.open(running.port)
        ack = await sender.send(DFT_CR)
        await sender.close()
        assert msa(ack)[1] == "AA"
        await drain(hub)
        once = await consumed_on_bus(hub)
        assert len(once) == 2  # the message's two FT1 charges

        first = tmp_path / "charges_0612.hl7"
        first.write_bytes(DFT)  # LF line endings
        renamed = tmp_path / "charges_0612 (copy).hl7"
        renamed.write_bytes(DFT)
        crlf = tmp_path / "charges_0612_windows.hl7"
        crlf.write_bytes(DFT_CRLF)
        outcomes = [await ingest_path(hub, "his", p) for p in (first, renamed, crlf)]
        r = await running.client.post("/ingest/his", content=DFT)
        assert r.status_code == 202, r.text
        assert r.json()["duplicate"] is True
        assert all(o.duplicate for o in outcomes)
        # Every copy is recognised as the message that came by MLLP.
        assert {o.record.raw_ref for o in outcomes} == {r.json()["raw_ref"]}
        again = await Sender.open(running.port)
        assert await again.send(DFT_CR) == ack, "the MLLP resend gets the stored ACK"
        await again.close()

        await drain(hub)
        assert await consumed_on_bus(hub) == once
        counts = (await hub.archive.reconciliation())["his"]
        assert (counts["received"], counts["resends"]) == (1, 5)
        assert await hub.dead_letters.query(system="his") == []

    async def test_file_of_several_messages_is_deduplicated_per_message(
        self, running: Running, tmp_path: Path
    ) -> None:
        hub = running.hub
        path = tmp_path / "first.hl7"
        path.write_bytes(DFT)
        await ingest_path(hub, "his", path)
        await drain(hub)
        once = await consumed_on_bus(hub)

        new = DFT.replace(CONTROL_ID, b"DFT20240612002")
        conflicting = DFT.replace(CONTROL_ID, b"DFT20240612003")
        seed = tmp_path / "seed.hl7"
        seed.write_bytes(conflicting)
        await ingest_path(hub, "his", seed)
        await drain(hub)
        before_batch = await consumed_on_bus(hub)
        assert len(before_batch) == 2 * len(once)

        changed = conflicting.replace(b"2680.00|2680.00", b"2690.00|2690.00")
        assert changed != conflicting
        batch = tmp_path / "batch.hl7"
        # Resend (CRLF), a new message, a conflict (same MSH-10, other content).
        batch.write_bytes(DFT_CRLF + b"\r\n" + new + b"\n" + changed)
        stored = await ingest_path(hub, "his", batch)
        assert not stored.duplicate
        await drain(hub)

        consumed = await consumed_on_bus(hub)
        assert len(consumed) == 3 * len(once), "only the new message of the batch was applied"
        letters = [
            d for d in await hub.dead_letters.query(system="his") if d.raw_ref == stored.record.raw_ref
        ]
        assert [(d.code, d.position) for d in letters] == [("conflict", "m3/MSH")]
        assert letters[0].location.field == "MSH-10"


class TestTranslateOnce:
    async def test_what_was_translated_to_answer_is_not_translated_again(
        self, running: Running, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """MLLP and FHIR translate to answer; the worker publishes that result without translating."""
        calls: list[str] = []
        for system in ("his", "fhir"):
            worker = running.hub.worker(system)
            real = worker.adapter.translate

            def counted(*args: Any, _real: Any = real, _system: str = system) -> Any:
                calls.append(_system)
                return _real(*args)

            monkeypatch.setattr(worker, "adapter", replace(worker.adapter, translate=counted))
        sender = await Sender.open(running.port)
        for n in range(3):
            ack = await sender.send(DFT_CR.replace(CONTROL_ID, f"DFT2024061210{n}".encode()))
            assert msa(ack)[1] == "AA"
        await sender.close()
        device = (REPO / "examples" / "fhir" / "device-ventilator-icu.json").read_bytes()
        r = await running.client.post(
            "/fhir/Device", content=device, headers={"Content-Type": "application/fhir+json"}
        )
        assert r.status_code == 201, r.text
        await drain(running.hub)
        assert sorted(calls) == ["fhir", "his", "his", "his"]
        assert len(await consumed_on_bus(running.hub)) == 6
        assert running.hub.worker("his").reused == 3
        assert running.hub.worker("fhir").reused == 1


class TestAckAfterStorage:
    async def test_aa_once_stored_and_a_raising_translator_only_dead_letters(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """HUB_MLLP_ACK_AFTER=storage: the AA is kept with the message; the worker dead-letters later."""
        async with build_hub(settings_for(tmp_path, mllp_ack_after="storage")) as hub:
            worker = hub.worker("his")
            monkeypatch.setattr(worker, "adapter", replace(worker.adapter, translate=raising("bug")))
            server = await _start_mllp(hub)
            try:
                sender = await Sender.open(hub.settings.mllp_port)
                ack = await sender.send(DFT_CR)
                assert msa(ack)[1] == "AA"
                assert await sender.send(DFT_CR) == ack
                await sender.close()
            finally:
                server.close()
            await drain(hub)
            (letter,) = await hub.dead_letters.query(system="his")
            assert letter.code == "translator_error"


class TestMllpLimits:
    async def test_connections_over_the_cap_are_closed(self, tmp_path: Path) -> None:
        async with build_hub(settings_for(tmp_path, mllp_max_connections=2)) as hub:
            server = await _start_mllp(hub)
            try:
                kept = [await Sender.open(hub.settings.mllp_port) for _ in range(2)]
                assert msa(await kept[0].send(DFT_CR))[1] == "AA"  # both accepted and served
                over = await Sender.open(hub.settings.mllp_port)
                assert await asyncio.wait_for(over.reader.read(1024), timeout=10) == b""
                assert msa(await kept[1].send(DFT_CR))[1] == "AA"
                for s in (*kept, over):
                    await s.close()
            finally:
                server.close()

    async def test_a_frame_that_does_not_end_is_dropped_after_the_read_timeout(self, tmp_path: Path) -> None:
        async with build_hub(settings_for(tmp_path, mllp_read_timeout=0.5, mllp_idle_timeout=60)) as hub:
            server = await _start_mllp(hub)
            try:
                sender = await Sender.open(hub.settings.mllp_port)
                sender.writer.write(b"\x0b" + DFT_CR[:200])  # begun, never ended
                await sender.writer.drain()
                assert await asyncio.wait_for(sender.reader.read(1024), timeout=20) == b""
                await sender.close()
                assert await hub.archive.reconciliation() == {}, "nothing of the unfinished frame is stored"
            finally:
                server.close()
