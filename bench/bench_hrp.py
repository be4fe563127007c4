"""HRP ledger translation throughput: decode + parse + translate the sample ledger, rows per second."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext
from adapters.hrp import ADAPTER
from adapters.hrp.mapping import default_mapping
from hub.ports import RawRecord

LEDGER = Path(__file__).resolve().parents[1] / "examples" / "hrp" / "固定资产台账_2024.csv"
SUPPLEMENT = LEDGER.with_name("设备台账_补充.xlsx")
DURATION_S = 2.5


def translation_input(path: Path) -> tuple[RawRecord, bytes, Any, TranslateContext]:
    """What the HRP translator is called with for the export at `path` (bench time is fixed)."""
    payload = path.read_bytes()
    mapping = default_mapping()
    raw = RawRecord(
        raw_ref="bench",
        system="hrp",
        site="bench",
        message_id=path.name,
        sha256="0" * 64,
        size=len(payload),
        transport="file",
        received_at=datetime(2024, 7, 1, tzinfo=UTC),
        metadata={"filename": path.name},
    )
    ctx = TranslateContext(
        site="bench",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=ADAPTER.version,
        mapping_version=mapping.version,
    )
    return raw, payload, mapping, ctx


def _measure(path: Path) -> tuple[float, int, int]:
    raw, payload, mapping, ctx = translation_input(path)
    rows = runs = 0
    started = time.perf_counter()
    while time.perf_counter() - started < DURATION_S:
        result = ADAPTER.translate(raw, payload, mapping, ctx)
        rows += result.units
        runs += 1
    return rows / (time.perf_counter() - started), runs, result.units


async def run(report) -> None:
    rate, runs, units = _measure(LEDGER)
    report.add(
        "hrp",
        "ledger rows translated (GBK CSV, decode+parse+translate)",
        rate,
        "rows/s",
        note=f"{units} rows x {runs} runs",
    )
    rate, runs, units = _measure(SUPPLEMENT)
    report.add(
        "hrp",
        "ledger rows translated (XLSX, read+parse+translate)",
        rate,
        "rows/s",
        note=f"{units} rows x {runs} runs",
    )
