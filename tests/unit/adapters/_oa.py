"""Helpers shared by the OA adapter tests: raw records, a context, and JSON/XML exports to translate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext, Translation
from adapters.oa import ADAPTER
from adapters.oa.mapping import OaMapping, default_mapping
from hub.ports import RawRecord

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
JSON_EXPORT = EXAMPLES / "oa" / "工单导出_2024Q2.json"
XML_EXPORT = EXAMPLES / "oa" / "设备借用与报修_2024Q2.xml"
JSONL_PUSH = EXAMPLES / "oa" / "工单推送_2024-07-01.jsonl"
HRP_LEDGER = EXAMPLES / "hrp" / "固定资产台账_2024.csv"
RECEIVED = datetime(2024, 7, 1, 2, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")

REQUEST: dict[str, Any] = {
    "单据类型": "报修单", "单据号": "LC001", "工单号": "WX-0001", "资产编号": "ZC-2017-00023",
    "报修科室": "重症医学科", "故障描述": "开机自检失败", "紧急程度": "紧急", "报修方式": "扫码",
    "报修人": "王丽", "报修时间": "2024-04-02 17:22:00",
}  # fmt: skip
APPROVAL: dict[str, Any] = {
    "单据类型": "审批记录", "单据号": "LC002", "工单号": "WX-0001", "审批金额": "18,900.00",
    "审批人": "黄伟（设备科）", "审批级别": 2, "审批结果": "同意", "审批时间": "2024-04-03 09:00:00",
}  # fmt: skip
REJECTION: dict[str, Any] = {
    **APPROVAL, "单据号": "LC003", "审批结果": "驳回", "审批意见": "费用偏高", "审批级别": "一级",
}  # fmt: skip
ASSIGNMENT: dict[str, Any] = {
    "单据类型": "派工", "单据号": "LC004", "工单号": "WX-0001", "维修工程师": "周建国",
    "维修班组": "生命支持组", "派工时间": "2024-04-03 10:00:00",
}  # fmt: skip
START: dict[str, Any] = {
    "单据类型": "开始维修", "单据号": "LC005", "工单号": "WX-0001", "维修工程师": "周建国",
    "开始时间": "2024-04-03 10:30:00",
}  # fmt: skip
HOLD: dict[str, Any] = {
    "单据类型": "挂起", "单据号": "LC006", "工单号": "WX-0001", "挂起原因": "等待配件到货",
    "挂起时间": "2024-04-03 12:00:00",
}  # fmt: skip
COMPLETION: dict[str, Any] = {
    "单据类型": "完工", "单据号": "LC007", "工单号": "WX-0001",
    "处理信息": {"处理结果": "更换流量传感器后测试正常", "维修工时": "3.5", "维修费用": "18,900.00",
                 "停机时长(分钟)": "2880"},
    "更换配件": [{"配件编码": "HX-FS01", "配件名称": "流量传感器", "数量": 2, "单价": "4200.00"}],
    "完工时间": "2024-04-05 16:00:00",
}  # fmt: skip
CLOSURE: dict[str, Any] = {
    "单据类型": "验收", "单据号": "LC008", "工单号": "WX-0001", "验收人": "王丽", "验收时间": "2024-04-06 09:00:00",
}  # fmt: skip
CANCELLATION: dict[str, Any] = {
    "单据类型": "撤销", "单据号": "LC009", "工单号": "WX-0002", "撤销原因": "误报", "撤销时间": "2024-04-06 10:00:00",
}  # fmt: skip
LOAN: dict[str, Any] = {
    "单据类型": "借出", "单据号": "LC010", "借用单号": "JY20240001", "资产编号": "ZC-2012-00013",
    "借出科室": "呼吸与危重症医学科", "借用科室": "ICU", "责任人": "赵敏",
    "借出时间": "2024-05-01 09:00:00", "预计归还时间": "2024-05-10",
}  # fmt: skip
RETURN: dict[str, Any] = {
    "单据类型": "归还", "单据号": "LC011", "借用单号": "JY20240001", "资产编号": "ZC-2012-00013",
    "归还时间": "2024-05-09 15:20:00", "归还状况": "外观轻微划痕",
}  # fmt: skip
ALL_KINDS = (
    REQUEST,
    APPROVAL,
    REJECTION,
    ASSIGNMENT,
    START,
    HOLD,
    COMPLETION,
    CLOSURE,
    CANCELLATION,
    LOAN,
    RETURN,
)


@cache
def mapping() -> OaMapping:
    return default_mapping()


def raw_record(filename: str, *, message_id: str | None = None, content_type: str | None = None) -> RawRecord:
    metadata = {"filename": filename} | ({"content_type": content_type} if content_type else {})
    return RawRecord(
        raw_ref=f"raw-{filename}",
        system="oa",
        site="demo",
        message_id=message_id or filename,
        sha256="0" * 64,
        size=0,
        transport="file",
        received_at=RECEIVED,
        metadata=metadata,
    )


def context(oa_mapping: OaMapping | None = None) -> TranslateContext:
    used = oa_mapping or mapping()
    return TranslateContext(
        site="demo", tz=SHANGHAI, adapter_version=ADAPTER.version, mapping_version=used.version
    )


def run(
    payload: bytes,
    filename: str = "export.json",
    *,
    oa_mapping: OaMapping | None = None,
    message_id: str | None = None,
    content_type: str | None = None,
) -> Translation:
    used = oa_mapping or mapping()
    raw = raw_record(filename, message_id=message_id, content_type=content_type)
    return ADAPTER.translate(raw, payload, used, context(used))


def json_export(*records: Any, encoding: str = "utf-8") -> bytes:
    """An export object as OA systems write it: export time, then the records, one field per line."""
    body = {"导出时间": "2024-07-01 08:00:00", "记录": list(records)}
    return json.dumps(body, ensure_ascii=False, indent=2).encode(encoding)


def xml_export(*records: dict[str, Any], encoding: str = "utf-8", declare: bool = True) -> bytes:
    """`<工单列表>` holding one `<工单>` per record; the kind and document number as attributes."""
    head = f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' if declare else ""
    lines = [head, '<工单列表 导出时间="2024-07-01 08:00:00">\n']
    for record in records:
        rest = {k: v for k, v in record.items() if k not in ("单据类型", "单据号")}
        attrs = "".join(f" {k}={quoteattr(str(record[k]))}" for k in ("单据类型", "单据号") if k in record)
        lines.append(f"  <工单{attrs}>\n")
        lines += [_xml_field(k, v, "    ") for k, v in rest.items()]
        lines.append("  </工单>\n")
    lines.append("</工单列表>\n")
    return "".join(lines).encode(encoding)


def _xml_field(name: str, value: Any, indent: str) -> str:
    tag = name.replace("(分钟)", "")
    if isinstance(value, dict):
        inner = "".join(_xml_field(k, v, indent + "  ") for k, v in value.items())
        return f"{indent}<{tag}>\n{inner}{indent}</{tag}>\n"
    if isinstance(value, list):
        items = "".join(
            f"{indent}  <配件>"
            + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in part.items())
            + "</配件>\n"
            for part in value
        )
        return f"{indent}<{tag}>\n{items}{indent}</{tag}>\n"
    return f"{indent}<{tag}>{escape(str(value))}</{tag}>\n"
