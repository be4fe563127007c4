"""Modbus TCP polling of meters (pymodbus): a transport, the one I/O of the BMS adapter.

Each poll reads every target's holding registers as its model's register map says (big-endian
words, unsigned, times `scale`) and hands the readings to `submit` as the gateway JSON
(`{"readings": [...]}`), which the hub stores durably before anything else and translates like a
push. A meter that does not answer (refused, timed out, a Modbus exception) yields no reading:
it is listed in the poll's `silent` with the reason, and its gap shows in the energy model (no
reading is ever invented). Polls are time-stamped with the poll's start, to the second.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from adapters.bms.mapping import ModbusSettings, ModbusTarget, Register

logger = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Poll:
    at: datetime
    readings: list[dict[str, Any]] = field(default_factory=list)
    silent: dict[str, str] = field(default_factory=dict)  # meter -> why it gave nothing


def decode(words: list[int], register: Register) -> Decimal:
    """Big-endian unsigned words, times the register's scale."""
    raw = 0
    for word in words:
        raw = (raw << 16) | (word & 0xFFFF)
    return (Decimal(raw) * register.scale).normalize()


async def read_target(
    target: ModbusTarget, registers: list[Register], seconds: float
) -> list[tuple[Register, Decimal]]:
    """Every register of one meter; raises ConnectionError / ModbusException when it does not answer."""
    client = AsyncModbusTcpClient(target.host, port=target.port, timeout=seconds, retries=0)
    try:
        if not await client.connect():
            raise ConnectionError(f"{target.host}:{target.port} refused or did not answer")
        out = []
        for register in registers:
            answer = await client.read_holding_registers(register.address, count=register.words,
                                                         device_id=target.unit)  # fmt: skip
            if answer.isError():
                raise ModbusException(f"register {register.address}: {answer}")
            out.append((register, decode(list(answer.registers), register)))
        return out
    finally:
        client.close()


async def poll(settings: ModbusSettings, at: datetime) -> Poll:
    """One round over every target (concurrently); a silent meter is reported, not filled in."""
    stamp = at.astimezone(UTC).replace(microsecond=0)
    result = Poll(stamp)

    async def one(target: ModbusTarget) -> None:
        registers = settings.models[target.model]
        try:
            values = await asyncio.wait_for(
                read_target(target, registers, settings.timeout_seconds), settings.timeout_seconds * 2
            )
        except (TimeoutError, ConnectionError, ModbusException, OSError) as exc:
            result.silent[target.meter] = f"{type(exc).__name__}: {exc}"
            logger.warning("meter_silent", meter=target.meter, host=target.host, reason=type(exc).__name__)
            return
        for register, value in values:
            result.readings.append({
                "meter": target.meter, "at": stamp.isoformat(), "quantity": register.quantity,
                register_field(register): str(value),
            })  # fmt: skip

    await asyncio.gather(*(one(t) for t in settings.targets))
    result.readings.sort(key=lambda r: (r["meter"], r["quantity"]))
    return result


def register_field(register: Register) -> str:
    return "usage" if register.kind == "interval" else "value"


def body_of(result: Poll) -> bytes:
    return json.dumps({"gateway": "modbus", "sent_at": result.at.isoformat(), "readings": result.readings},
                      ensure_ascii=False).encode()  # fmt: skip


async def run_forever(
    settings: Callable[[], ModbusSettings],
    submit: Callable[[bytes, str], Awaitable[Any]],
    stop: asyncio.Event,
    now: Callable[[], datetime],
) -> None:
    """Poll every `interval_seconds` until `stop`; each round with readings is submitted once."""
    while not stop.is_set():
        current = settings()
        if current.targets:
            result = await poll(current, now())
            if result.readings:
                await submit(body_of(result), f"modbus-{result.at:%Y%m%dT%H%M%SZ}.json")
        try:
            await asyncio.wait_for(stop.wait(), current.interval_seconds)
        except TimeoutError:
            continue
