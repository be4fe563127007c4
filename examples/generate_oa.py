# ruff: noqa: INP001, S311, T201, DTZ001 - a standalone script: seeded sample data, printed progress;
# naive datetimes are the OA's local wall-clock times, written as such
"""Generate the synthetic OA samples in examples/oa/ (deterministic: same seed, same bytes).

Everything here is invented: staff names, work orders, faults, parts, costs and loans come from a
seeded random generator. The assets are real rows of the synthetic HRP ledger sample
(examples/hrp/固定资产台账_2024.csv, read through the HRP adapter), so the work orders land on
assets the hub already knows. Run from the repository root, after examples/generate_hrp.py:

    .venv/bin/python examples/generate_oa.py
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.base import TranslateContext
from adapters.hrp import ADAPTER as HRP
from adapters.hrp.mapping import default_mapping as hrp_mapping
from hub.ports import RawRecord
from schemas.assets import AssetRegistered, AssetStatus

SEED = 20240701
OUT = Path(__file__).with_name("oa")
LEDGER = Path(__file__).with_name("hrp") / "固定资产台账_2024.csv"
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 4, 1, 8, 0)
EXPORTED = datetime(2024, 7, 1, 8, 0)
DEPARTMENTS = (
    "重症医学科",
    "急诊科",
    "麻醉科",
    "心血管内科",
    "呼吸与危重症医学科",
    "手术室",
    "检验科",
    "放射科",
    "超声科",
    "儿科",
    "新生儿科",
    "血液净化中心",
)
ALIASES = {"重症医学科": "ICU", "心血管内科": "心内科", "血液净化中心": "透析室", "新生儿科": "NICU"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "丽敏静伟芳娜秀英军磊洋勇艳杰娟涛明超霞平刚桂兰"
ENGINEERS = (
    ("周建国", "生命支持组"),
    ("吴海涛", "生命支持组"),
    ("郑志强", "影像设备组"),
    ("孙立新", "检验设备组"),
    ("钱卫东", "综合维修组"),
    ("冯晓东", "综合维修组"),
)
APPROVERS = ((1, "科主任"), (2, "设备科"), (3, "分管院长"))
SYMPTOMS = {
    "呼吸机": (
        "潮气量监测不准，报警频繁",
        "开机自检失败，提示流量传感器故障",
        "呼气阀漏气，压力达不到设定值",
    ),
    "监护仪": ("屏幕闪烁后黑屏", "血氧模块无读数", "无创血压测量不准，反复充气"),
    "注射泵": ("推注速度不准，报警阻塞", "电池无法充电", "按键失灵"),
    "输液泵": ("气泡报警频繁", "门锁卡扣损坏", "流速偏差大"),
    "除颤仪": ("充电时间过长", "自检不通过，提示电池故障", "打印机不出纸"),
    "血液透析机": ("电导度报警", "血泵异响", "温度控制异常"),
    "数字化X射线摄影系统": ("探测器通讯中断", "曝光后无图像", "球管过热报警"),
    "麻醉机": ("回路漏气检查不通过", "蒸发罐刻度卡滞"),
    "婴儿培养箱": ("箱温波动大", "湿化不工作"),
}
GENERIC_SYMPTOMS = ("开机无反应", "运行中异响", "报警无法消除", "外壳破损")
PARTS = {
    "呼吸机": (
        ("HX-FS01", "流量传感器", 4200),
        ("HX-VL02", "呼气阀组件", 6800),
        ("HX-MB03", "主控板", 18500),
    ),
    "监护仪": (("JH-SP01", "血氧探头", 980), ("JH-LCD2", "显示屏组件", 5600), ("JH-NB03", "血压模块", 7200)),
    "数字化X射线摄影系统": (("DR-FPD1", "平板探测器", 68000), ("DR-CB02", "通讯板", 9800)),
    "血液透析机": (("TX-CD01", "电导传感器", 3200), ("TX-BP02", "血泵总成", 12600)),
}
GENERIC_PARTS = (("TY-BAT1", "锂电池", 650), ("TY-PWR2", "电源模块", 1800), ("TY-KEY3", "按键面板", 420))
RESOLUTIONS = (
    "更换故障部件后测试正常",
    "校准后恢复正常",
    "清洁保养并紧固接插件，运行正常",
    "更换配件，经质控检测合格",
)
# Assets the HRP ledger sample lists as 借出 (on loan) at 2024-06-30: their loans are still open.
ON_LOAN = ("ZC-2012-00013", "ZC-2014-00025", "ZC-2020-00033")
CONDITIONS = ("完好", "完好", "完好", "外观轻微划痕", "需检修")


@dataclass(frozen=True)
class Asset:
    card: str
    name: str
    department: str


@dataclass
class Doc:
    """One OA record before it is written: its kind, time and fields (single 单据号 assigned later)."""

    kind: str
    at: datetime
    fields: dict[str, object]
    doc_no: str = ""


@dataclass
class Story:
    number: str
    asset: Asset
    docs: list[Doc] = field(default_factory=list)


def ledger_assets() -> list[Asset]:
    """Good rows of the HRP ledger sample in the OA's departments, not scrapped or sealed."""
    mapping = hrp_mapping()
    raw = RawRecord(
        "raw-ledger",
        "hrp",
        "demo",
        LEDGER.name,
        "0" * 64,
        0,
        "file",
        datetime(2024, 7, 1, tzinfo=UTC),
        {"filename": LEDGER.name},
    )
    ctx = TranslateContext("demo", TZ, HRP.version, mapping.version)
    assets = []
    for emitted in HRP.translate(raw, LEDGER.read_bytes(), mapping, ctx).events:
        event = emitted.event
        if not isinstance(event, AssetRegistered):
            continue  # a ledger gives only registrations; anything else is not an asset to repair
        details = event.payload.details
        dept = details.department.name if details.department else None
        if dept in DEPARTMENTS and details.status not in (AssetStatus.SCRAPPED, AssetStatus.SEALED):
            assets.append(Asset(event.payload.identifiers[0].value, details.name or "设备", dept or ""))
    return assets


def oa_device_no(asset: Asset) -> str:
    """The OA's own device number for an asset (SB + year digits + serial): ZC-2017-00023 -> SB1700023."""
    _, year, serial = asset.card.split("-")
    return f"SB{year[2:]}{serial}"


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def later(rng: random.Random, at: datetime, low_h: float, high_h: float) -> datetime:
    return (at + timedelta(hours=rng.uniform(low_h, high_h))).replace(second=0, microsecond=0)


def story(
    rng: random.Random, number: str, asset: Asset, at: datetime, *, reject: bool, open_at: int
) -> Story:
    """One work order's records, request to closure; `open_at` stops it after that many steps."""
    s = Story(number, asset)
    requester = person(rng)
    dept = ALIASES.get(asset.department, asset.department) if rng.random() < 0.2 else asset.department
    priority = rng.choices(("紧急", "高", "普通", "低"), (15, 25, 50, 10))[0]
    request: dict[str, object] = {
        "工单号": number,
        "资产编号": asset.card,
        "设备名称": asset.name,
        "报修科室": dept,
        "故障描述": rng.choice(SYMPTOMS.get(asset.name, GENERIC_SYMPTOMS)),
        "紧急程度": priority,
        "报修方式": rng.choices(("扫码", "OA", "电话"), (50, 35, 15))[0],
        "报修人": requester,
    }
    if rng.random() < 0.3:
        request["设备编号"] = oa_device_no(asset)  # the OA's own number, beside the card number
    s.docs.append(Doc("报修单", at, request))
    catalogue = PARTS.get(asset.name, GENERIC_PARTS)
    parts = rng.sample(catalogue, k=rng.choice((0, 1, 1, 2)) if len(catalogue) > 1 else 1)
    labour = Decimal(rng.choice((1, 1.5, 2, 3, 4, 6))).quantize(Decimal("0.1"))
    cost = sum((Decimal(p[2]) for p in parts), Decimal(0)) + labour * 200
    now = at
    if cost >= 10_000:
        levels = APPROVERS if cost >= 50_000 else APPROVERS[:2]
        for level, role in levels:
            now = later(rng, now, 2, 20)
            rejected = reject and level == 2
            s.docs.append(
                Doc(
                    "审批记录",
                    now,
                    {
                        "工单号": number,
                        "审批金额": f"{cost:,.2f}",
                        "审批人": f"{person(rng)}（{role}）",
                        "审批级别": level,
                        "审批结果": "驳回" if rejected else "同意",
                        "审批意见": "费用偏高，建议先联系原厂评估" if rejected else "同意维修",
                    },
                )
            )
            if rejected:
                now = later(rng, now, 1, 30)
                s.docs.append(Doc("撤销", now, {"工单号": number, "撤销原因": "审批未通过，转原厂评估"}))
                return s
    engineer, team = rng.choice(ENGINEERS)
    steps: list[tuple[str, float, float, dict[str, object]]] = [
        ("派工", 0.3, 6, {"工单号": number, "维修工程师": engineer, "维修班组": team}),
        ("开始维修", 0.2, 4, {"工单号": number, "维修工程师": engineer}),
    ]
    if parts and rng.random() < 0.35:
        steps += [
            ("挂起", 1, 6, {"工单号": number, "挂起原因": "等待配件到货"}),
            ("开始维修", 24, 96, {"工单号": number, "维修工程师": engineer}),
        ]
    steps.append(("完工", 1, 8, {"工单号": number}))
    steps.append(("验收", 1, 30, {"工单号": number, "验收人": requester}))
    for kind, low, high, step_fields in steps[:open_at]:
        now = later(rng, now, low, high)
        fields = step_fields
        if kind == "完工":
            fields = {
                **step_fields,
                **completion(rng, parts, labour=labour, cost=cost, requested=at, done=now),
            }
        s.docs.append(Doc(kind, now, fields))
    return s


def completion(
    rng: random.Random,
    parts: list[tuple[str, str, int]],
    *,
    labour: Decimal,
    cost: Decimal,
    requested: datetime,
    done: datetime,
) -> dict[str, object]:
    down = int((done - requested).total_seconds() // 60)
    return {
        "处理信息": {
            "处理结果": rng.choice(RESOLUTIONS),
            "维修工时": float(labour),
            "维修费用": float(cost),
            "停机时长(分钟)": down if rng.random() < 0.8 else down // 2,
        },
        "更换配件": [
            {"配件编码": code, "配件名称": name, "数量": 1, "单价": f"{price:.2f}"}
            for code, name, price in parts
        ],
    }


def cancelled(rng: random.Random, number: str, asset: Asset, at: datetime) -> Story:
    s = story(rng, number, asset, at, reject=False, open_at=0)
    s.docs.append(
        Doc(
            "撤销",
            later(rng, at, 0.5, 3),
            {"工单号": number, "撤销原因": rng.choice(("误报", "设备自检恢复正常"))},
        )
    )
    return s


def stories(
    rng: random.Random, assets: list[Asset], count: int, *, first: int, day0: datetime, end: datetime
) -> list[Story]:
    out: list[Story] = []
    span_h = (end - day0).total_seconds() / 3600
    starts = sorted(later(rng, day0, 0, span_h) for _ in range(count))
    rejected_once = False
    for i, at in enumerate(starts):
        number = f"WX{at:%Y%m}{first + i:04d}"
        asset = rng.choice(assets)
        if i % 19 == 7:
            out.append(cancelled(rng, number, asset, at))
            continue
        # Late work orders are still open at export time, at assorted stages.
        open_at = rng.randint(0, 4) if at > end - timedelta(days=8) else 99
        s = story(rng, number, asset, at, reject=False, open_at=open_at)
        if not rejected_once and any(d.kind == "审批记录" for d in s.docs) and first == 1:
            s = story(random.Random(SEED + i), number, asset, at, reject=True, open_at=99)
            rejected_once = any(d.fields.get("审批结果") == "驳回" for d in s.docs)
        out.append(s)
    return out


def number_docs(docs: list[Doc], first: int) -> list[Doc]:
    """Sort by time and give each record its 单据号: one OA-wide sequence, so `first` differs per file."""
    docs.sort(key=lambda d: (d.at, str(d.fields.get("工单号", d.fields.get("借用单号", "")))))
    for n, doc in enumerate(docs, start=first):
        doc.doc_no = f"LC{doc.at:%Y%m%d}{n:05d}"
    return docs


TIME_FIELD = {
    "报修单": "报修时间",
    "审批记录": "审批时间",
    "派工": "派工时间",
    "开始维修": "开始时间",
    "挂起": "挂起时间",
    "完工": "完工时间",
    "验收": "验收时间",
    "撤销": "撤销时间",
    "借出": "借出时间",
    "归还": "归还时间",
    "报废申请": "申请时间",
    "回访": "回访时间",
}


def json_record(doc: Doc) -> dict[str, object]:
    return {
        "单据类型": doc.kind,
        "单据号": doc.doc_no,
        **doc.fields,
        TIME_FIELD[doc.kind]: f"{doc.at:%Y-%m-%d %H:%M:%S}",
    }


def write_json(path: Path, docs: list[Doc]) -> None:
    body = {
        "导出时间": f"{EXPORTED:%Y-%m-%d %H:%M:%S}",
        "导出系统": "XX市第一人民医院协同办公平台",
        "记录数": len(docs),
        "记录": [json_record(d) for d in docs],
    }
    # Windows OA exports write UTF-8 with a byte-order mark.
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode())


def xml_value(name: str, value: object, indent: str) -> str:
    if isinstance(value, list):
        items = "".join(
            f"{indent}  <配件>"
            + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in part.items())
            + "</配件>\n"
            for part in value
        )
        return f"{indent}<配件列表>\n{items}{indent}</配件列表>\n"
    if isinstance(value, dict):
        inner = "".join(xml_value(k, v, indent + "  ") for k, v in value.items())
        return f"{indent}<{name}>\n{inner}{indent}</{name}>\n"
    tag = name.replace("(分钟)", "")  # parentheses are not allowed in XML names
    return f"{indent}<{tag}>{escape(str(value))}</{tag}>\n"


def write_xml(path: Path, docs: list[Doc]) -> None:
    lines = [
        '<?xml version="1.0" encoding="GBK"?>\n',
        f'<工单列表 导出时间="{EXPORTED:%Y-%m-%d %H:%M:%S}" 导出系统="XX市第一人民医院协同办公平台">\n',
    ]
    for doc in docs:
        lines.append(f"  <工单 单据类型={quoteattr(doc.kind)} 单据号={quoteattr(doc.doc_no)}>\n")
        lines += [xml_value(k, v, "    ") for k, v in doc.fields.items()]
        lines.append(
            f"    <{TIME_FIELD[doc.kind]}>{doc.at:%Y/%m/%d %H:%M}</{TIME_FIELD[doc.kind]}>\n  </工单>\n"
        )
    lines.append("</工单列表>\n")
    path.write_bytes("".join(lines).encode("gbk"))


def loans(rng: random.Random, assets: list[Asset]) -> list[Doc]:
    """Nine loans that came back and three still out (on assets the HRP ledger shows as 借出)."""
    kinds = ("呼吸机", "监护仪", "注射泵", "输液泵", "除颤仪", "医用电动吸引器")
    still_out = [a for a in assets if a.card in ON_LOAN]
    lendable = [a for a in assets if a.name in kinds and a.card not in ON_LOAN]
    docs: list[Doc] = []
    for i, asset in enumerate([*rng.sample(lendable, 9), *still_out]):
        loan_id = f"JY2024{i + 1:04d}"
        borrower = rng.choice([d for d in DEPARTMENTS if d != asset.department])
        out = later(rng, datetime(2024, 4, 8), 0, 24 * 70)
        due = (out + timedelta(days=rng.choice((7, 14, 30)))).date()
        docs.append(
            Doc(
                "借出",
                out,
                {
                    "借用单号": loan_id,
                    "资产编号": asset.card,
                    "设备名称": asset.name,
                    "借出科室": asset.department,
                    "借用科室": ALIASES.get(borrower, borrower) if i % 4 == 0 else borrower,
                    "责任人": person(rng),
                    "预计归还时间": f"{due:%Y-%m-%d}",
                },
            )
        )
        if asset.card not in ON_LOAN:
            back = later(rng, out, 24, 24 * 20)
            condition = CONDITIONS[i % len(CONDITIONS)]
            docs.append(
                Doc("归还", back, {"借用单号": loan_id, "资产编号": asset.card, "归还状况": condition})
            )
    return docs


def main() -> None:
    rng = random.Random(SEED)
    OUT.mkdir(exist_ok=True)
    assets = ledger_assets()
    main_stories = stories(rng, assets, 80, first=1, day0=START, end=datetime(2024, 6, 28))
    json_docs = number_docs([d for s in main_stories for d in s.docs], 1)
    # Deliberately bad records (see README): an unknown kind and an unknown priority code.
    bad_kind = Doc(
        "报废申请", datetime(2024, 6, 12, 10, 5), {"资产编号": assets[3].card, "申请科室": "检验科"}
    )
    bad_priority = Doc(
        "报修单",
        datetime(2024, 6, 18, 14, 40),
        {
            "工单号": "WX2024069001",
            "资产编号": assets[5].card,
            "报修科室": assets[5].department,
            "故障描述": "设备无法开机",
            "紧急程度": "特急加急",
            "报修方式": "电话",
            "报修人": person(rng),
        },
    )
    follow_up = Doc(
        "回访", datetime(2024, 6, 25, 9, 0), {"工单号": json_docs[0].fields["工单号"], "回访结果": "满意"}
    )
    for doc, position in ((bad_kind, 150), (bad_priority, 260), (follow_up, 300)):
        doc.doc_no = f"LC{doc.at:%Y%m%d}{9000 + position:05d}"
        json_docs.insert(position, doc)
    write_json(OUT / "工单导出_2024Q2.json", json_docs)

    xml_stories = stories(
        random.Random(SEED + 1),
        assets,
        16,
        first=901,
        day0=datetime(2024, 5, 6, 8),
        end=datetime(2024, 6, 20),
    )
    lending = loans(random.Random(SEED + 2), assets)
    xml_docs = number_docs([d for s in xml_stories for d in s.docs] + lending, 10001)
    # Two requests name the device by the OA's own number only: they land on provisional assets
    # (scheme oa.no) until the registry links that number to the card.
    for doc in [d for d in xml_docs if d.kind == "报修单"][3:5]:
        card = str(doc.fields.pop("资产编号"))
        doc.fields["设备编号"] = oa_device_no(next(a for a in assets if a.card == card))
    # Deliberately bad: a due date that does not exist (June has 30 days).
    bad_due = next(d for d in xml_docs if d.kind == "借出")
    bad_due.fields["预计归还时间"] = "2024-06-31"
    write_xml(OUT / "设备借用与报修_2024Q2.xml", xml_docs)

    # The webhook's log for 2024-07-01: the last three records of the JSON export sent again
    # (same 单据号: the same events, no second effect), then the day's new records.
    resent = [json_record(d) for d in json_docs[-3:]]
    july = stories(
        random.Random(SEED + 3),
        assets,
        2,
        first=951,
        day0=datetime(2024, 7, 1, 7),
        end=datetime(2024, 7, 1, 10),
    )
    fresh = [json_record(d) for d in number_docs([d for s in july for d in s.docs], 20001)]
    lines = [json.dumps(r, ensure_ascii=False) for r in resent + fresh]
    (OUT / "工单推送_2024-07-01.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(
        f"wrote {OUT}: {len(json_docs)} JSON records ({len(main_stories)} work orders), "
        f"{len(xml_docs)} XML records, {len(lines)} JSON Lines records"
    )


if __name__ == "__main__":
    main()
