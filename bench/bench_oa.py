"""OA translation: records per second for the bundled JSON (UTF-8 BOM) and GBK XML samples.

Measures the whole translator (decode, parse, field lookup, event models) on one core, repeating
each sample for about two seconds; reading the file from disk is outside the timing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext
from adapters.oa import ADAPTER, default_mapping
from hub.ports import RawRecord

if TYPE_CHECKING:
    from bench.report import Report

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "oa"
CASES = (("JSON", "工单导出_2024Q2.json"), ("XML (GBK)", "设备借用与报修_2024Q2.xml"))
SECONDS = 2.0


async def run(report: Report) -> None:
    mapping = default_mapping()
    ctx = TranslateContext(
        site="bench",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=ADAPTER.version,
        mapping_version=mapping.version,
    )
    for label, name in CASES:
        path = SAMPLES / name
        if not path.exists():
            report.skip(f"OA {label} translation", f"{path} is missing (run examples/generate_oa.py)")
            continue
        payload = path.read_bytes()
        raw = RawRecord(
            raw_ref=f"bench-{name}", system="oa", site="bench", message_id=name, sha256="0" * 64,
            size=len(payload), transport="file", received_at=datetime.now(UTC), metadata={"filename": name},
        )  # fmt: skip
        ADAPTER.translate(raw, payload, mapping, ctx)  # warm up: regexes, pydantic validators
        records = rounds = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < SECONDS:
            records += ADAPTER.translate(raw, payload, mapping, ctx).units
            rounds += 1
        report.add(
            "oa",
            f"{label} export translated ({name}, {records // rounds} records)",
            records / elapsed,
            "records/s",
            note="one core, whole translator",
        )
