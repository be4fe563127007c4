"""Modbus TCP polling against pymodbus's own server on loopback: readings, and a silent meter."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer
from sqlalchemy import func, select

from adapters.base import TranslateContext
from adapters.bms.mapping import ModbusSettings, default_mapping
from adapters.bms.modbus import body_of, decode, poll
from adapters.bms.translate import translate
from hub.bootstrap import modbus_poller
from hub.pipeline import drain
from hub.ports import RawRecord
from projections.energy.tables import series
from tests.e2e.conftest import wired_hub

AT = datetime(2024, 6, 12, 1, 15, tzinfo=UTC)
CTX = TranslateContext(
    site="main", tz=ZoneInfo("Asia/Shanghai"), adapter_version="bms/test", mapping_version="t"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _words(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


@pytest.fixture
async def meter_server() -> AsyncIterator[tuple[int, ModbusTcpServer]]:
    """A DTSD1352-like energy meter at unit 1: 12345678 x 0.01 kWh, 4321 x 0.001 kW."""
    registers = [*_words(12_345_678), *_words(4_321)]
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, registers))  # data address 0 = block 1
    port = _free_port()
    server = ModbusTcpServer(
        ModbusServerContext(devices={1: device}, single=False), address=("127.0.0.1", port)
    )
    task = asyncio.create_task(server.serve_forever())
    for _ in range(100):
        if server.is_active():
            break
        await asyncio.sleep(0.02)
    yield port, server
    await server.shutdown()
    task.cancel()


def _settings(port: int, silent_port: int) -> ModbusSettings:
    models = default_mapping().modbus.models
    return ModbusSettings.model_validate({
        "timeout_seconds": 5,
        "models": {k: [r.model_dump() for r in v] for k, v in models.items()},
        "targets": [
            {"meter": "B-3F-E01", "model": "DTSD1352", "host": "127.0.0.1", "port": port, "unit": 1},
            {"meter": "B-5F-E01", "model": "DTSD1352", "host": "127.0.0.1", "port": silent_port, "unit": 1},
        ],
    })  # fmt: skip


class TestModbusPolling:
    async def test_reads_the_register_map_and_reports_the_silent_meter(
        self, meter_server: tuple[int, ModbusTcpServer]
    ) -> None:
        """The answering meter gives kWh and kW as scaled; the one nobody serves gives nothing, named."""
        port, _ = meter_server
        result = await poll(_settings(port, _free_port()), AT)
        assert [(r["meter"], r["quantity"], r["value"]) for r in result.readings] == [
            ("B-3F-E01", "electricity_kw", "4.321"),
            ("B-3F-E01", "electricity_kwh", "123456.78"),
        ]
        assert list(result.silent) == ["B-5F-E01"]

    async def test_a_meter_that_stops_answering_yields_no_reading(
        self, meter_server: tuple[int, ModbusTcpServer]
    ) -> None:
        """After its server stops, the next poll reports it silent and invents no value."""
        port, server = meter_server
        first = await poll(_settings(port, _free_port()), AT)
        await server.shutdown()
        second = await poll(_settings(port, _free_port()), AT.replace(minute=30))
        assert len(first.readings) == 2
        assert (second.readings, sorted(second.silent)) == ([], ["B-3F-E01", "B-5F-E01"])

    async def test_a_poll_translates_like_a_gateway_push(
        self, meter_server: tuple[int, ModbusTcpServer]
    ) -> None:
        """The poll's body goes through the bms translator: one reading per register, nothing else."""
        port, _ = meter_server
        result = await poll(_settings(port, _free_port()), AT)
        body = body_of(result)
        raw = RawRecord(raw_ref="r", system="bms", site="main", message_id="modbus-1.json", sha256="x",
                        size=len(body), transport="modbus", received_at=AT)  # fmt: skip
        out = translate(raw, body, default_mapping(), CTX)
        assert out.failures == ()
        reads = [r for e in out.events for r in e.event.unfold()]  # type: ignore[attr-defined]
        assert [(r.payload.quantity, r.payload.value) for r in reads] == [
            ("electricity_kw", Decimal("4.321")),
            ("electricity_kwh", Decimal("123456.78")),
        ]
        assert json.loads(body)["gateway"] == "modbus"


def test_decode_is_big_endian_and_scaled() -> None:
    """Two words high first, unsigned, times the scale."""
    register = default_mapping().modbus.models["DTSD1352"][0]
    assert decode([0x0001, 0x0000], register) == Decimal("655.36")


async def test_hub_serve_polls_the_mappings_targets_into_the_energy_model(
    meter_server: tuple[int, ModbusTcpServer], tmp_path: Path
) -> None:
    """A site mapping listing the meter: one poll round is stored as a push and projected; the
    unanswered meter adds nothing."""
    port, _ = meter_server
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "bms.yaml").write_text(
        "extends: default\n"
        "modbus:\n"
        "  interval_seconds: 3600\n"
        "  timeout_seconds: 5\n"
        "  targets:\n"
        f"    - {{meter: B-3F-E01, model: DTSD1352, host: 127.0.0.1, port: {port}, unit: 1}}\n"
        f"    - {{meter: B-5F-E01, model: DTSD1352, host: 127.0.0.1, port: {_free_port()}, unit: 1}}\n",
        encoding="utf-8",
    )
    settings = {"mapping_dir": mappings, "auth": "off"}
    async with wired_hub(tmp_path / "hub", settings=settings) as w:
        stop = asyncio.Event()
        poller = modbus_poller(w.hub, stop)
        assert poller is not None
        task = asyncio.create_task(poller)
        for _ in range(100):  # the first round runs at once; wait until it is projected
            await asyncio.sleep(0.1)
            await drain(w.hub)
            with w.hub.engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(series)).scalar_one():
                    break
        stop.set()
        await task
        await drain(w.hub)
        with w.hub.engine.connect() as conn:
            found = conn.execute(
                select(series.c.meter_id, series.c.quantity).order_by(series.c.quantity)
            ).all()
    assert [tuple(r) for r in found] == [("B-3F-E01", "electricity_kw"), ("B-3F-E01", "electricity_kwh")]
