"""SPD translation throughput: decode + parse + translate the sample exports, rows per second."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext
from adapters.spd import ADAPTER
from adapters.spd.mapping import default_mapping
from hub.ports import RawRecord

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "spd"
RECEIPTS = EXAMPLES / "03_入库单_2024Q2.csv"  # GBK, a GS1 barcode on most rows
DISTRIBUTIONS = EXAMPLES / "04_出库配送单_2024Q2.csv"
SCANS = EXAMPLES / "05_消耗扫码_2024-06.xlsx"
DURATION_S = 2.5


def _measure(paths: list[Path]) -> tuple[float, int, int]:
    mapping = default_mapping()
    ctx = TranslateContext(
        site="bench",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=ADAPTER.version,
        mapping_version=mapping.version,
    )
    jobs = []
    for path in paths:
        payload = path.read_bytes()
        raw = RawRecord(
            raw_ref="bench",
            system="spd",
            site="bench",
            message_id=path.name,
            sha256="0" * 64,
            size=len(payload),
            transport="file",
            received_at=datetime(2024, 7, 1, tzinfo=UTC),
            metadata={"filename": path.name},
        )
        jobs.append((raw, payload))
    rows = runs = 0
    started = time.perf_counter()
    while time.perf_counter() - started < DURATION_S:
        for raw, payload in jobs:
            rows += ADAPTER.translate(raw, payload, mapping, ctx).units
        runs += 1
    return rows / (time.perf_counter() - started), runs, rows // max(runs, 1)


async def run(report) -> None:
    rate, runs, units = _measure([RECEIPTS, DISTRIBUTIONS])
    report.add(
        "spd",
        "rows translated (GBK + UTF-8 CSV receipts and distributions, barcodes parsed)",
        rate,
        "rows/s",
        note=f"{units} rows x {runs} runs",
    )
    rate, runs, units = _measure([SCANS])
    report.add(
        "spd",
        "rows translated (XLSX consumption scans, read+parse+translate)",
        rate,
        "rows/s",
        note=f"{units} rows x {runs} runs",
    )
