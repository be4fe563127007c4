"""Helpers shared by the HRP adapter tests: a raw record, a context and CSV bytes for a ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext, Translation
from adapters.hrp import ADAPTER
from adapters.hrp.mapping import HrpMapping, default_mapping
from hub.ports import RawRecord

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "hrp"
LEDGER = EXAMPLES / "固定资产台账_2024.csv"
LEDGER_UPDATE = EXAMPLES / "固定资产台账_2024_更新.csv"
LEDGER_BOM = EXAMPLES / "固定资产台账_分院_UTF8_BOM.csv"
SUPPLEMENT = EXAMPLES / "设备台账_补充.xlsx"
MAPPING_FIX = EXAMPLES / "mapping_fix.yaml"
RECEIVED = datetime(2024, 7, 1, 2, 30, tzinfo=UTC)
HEADER = "资产编号,资产名称,规格型号,生产厂家,出厂编号,使用科室,存放地点,购置日期,原值,资产状态,UDI"


def raw_record(filename: str, *, message_id: str | None = None) -> RawRecord:
    return RawRecord(
        raw_ref=f"raw-{filename}",
        system="hrp",
        site="demo",
        message_id=message_id or filename,
        sha256="0" * 64,
        size=0,
        transport="file",
        received_at=RECEIVED,
        metadata={"filename": filename},
    )


def context(mapping: HrpMapping) -> TranslateContext:
    return TranslateContext(
        site="demo",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=ADAPTER.version,
        mapping_version=mapping.version,
    )


def run(payload: bytes, filename: str = "ledger.csv", mapping: HrpMapping | None = None) -> Translation:
    mapping = mapping or default_mapping()
    return ADAPTER.translate(raw_record(filename), payload, mapping, context(mapping))


def ledger_csv(*rows: str, title: bool = True) -> bytes:
    lines = (["XX市人民医院固定资产台账", "导出日期：2024-06-30"] if title else []) + [HEADER, *rows]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")
