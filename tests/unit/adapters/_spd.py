"""Helpers shared by the SPD adapter tests: a raw record, a context and CSV bytes for an export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext, Translation
from adapters.spd import ADAPTER
from adapters.spd.mapping import SpdMapping, default_mapping
from hub.ports import RawRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "spd"
MASTER = EXAMPLES / "01_物资字典.csv"
THRESHOLDS = EXAMPLES / "02_库存上下限.csv"
RECEIPTS = EXAMPLES / "03_入库单_2024Q2.csv"
DISTRIBUTIONS = EXAMPLES / "04_出库配送单_2024Q2.csv"
SCANS = EXAMPLES / "05_消耗扫码_2024-06.xlsx"
DISPOSALS = EXAMPLES / "06_报损报废单_2024-06.csv"
STOCKTAKE = EXAMPLES / "07_盘点单_2024-06-28.csv"
SAMPLES = (MASTER, THRESHOLDS, RECEIPTS, DISTRIBUTIONS, SCANS, DISPOSALS, STOCKTAKE)
RECEIVED = datetime(2024, 7, 1, 2, 30, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")
GTIN = "06901234567892"  # a valid GTIN-14 (check digit 2)
OTHER_GTIN = "06901234567885"


def raw_record(filename: str, *, message_id: str | None = None) -> RawRecord:
    return RawRecord(
        raw_ref=f"raw-{filename}",
        system="spd",
        site="demo",
        message_id=message_id or filename,
        sha256="0" * 64,
        size=0,
        transport="file",
        received_at=RECEIVED,
        metadata={"filename": filename},
    )


def context(mapping: SpdMapping) -> TranslateContext:
    return TranslateContext(
        site="demo", tz=TZ, adapter_version=ADAPTER.version, mapping_version=mapping.version
    )


def run(
    payload: bytes,
    filename: str = "export.csv",
    mapping: SpdMapping | None = None,
    *,
    message_id: str | None = None,
) -> Translation:
    mapping = mapping or default_mapping()
    return ADAPTER.translate(raw_record(filename, message_id=message_id), payload, mapping, context(mapping))


def table(header: Sequence[str], *rows: Sequence[str], encoding: str = "utf-8") -> bytes:
    """CSV bytes of a header and rows, quoted as Excel writes them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)
