# ruff: noqa: INP001, S311, T201 - a standalone script: seeded sample data, printed progress
"""Generate the synthetic HRP fixed-asset ledger samples in examples/hrp/ (deterministic).

Everything here is invented: hospital, departments' devices, card numbers, serials, UDIs and
amounts come from a seeded random generator. Run from the repository root:

    .venv/bin/python examples/generate_hrp.py

Same seed, same bytes: the XLSX is re-zipped with fixed timestamps so the output is stable.
"""

from __future__ import annotations

import io
import os
import random
import re
import sys
import zipfile
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

# openpyxl writes XML through lxml when it is installed and through the standard library
# otherwise, and the two differ byte for byte; the committed samples are the standard library's.
os.environ.setdefault("OPENPYXL_LXML", "False")
import openpyxl  # after the setting above

if TYPE_CHECKING:
    from collections.abc import Callable

SEED = 20240630
OUT = Path(__file__).with_name("hrp")
HOSPITAL = "XX市第一人民医院"
EXPORT_DAY = date(2024, 6, 30)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Device:
    name: str
    makers: tuple[tuple[str, str, str], ...]  # (manufacturer, model, serial prefix)
    low: int
    high: int
    category: tuple[str, str]
    life: int


CAT_ELECTRONIC = ("6821", "医用电子仪器设备")
CAT_OR = ("6854", "手术室、急救室、诊疗室设备及器具")
CAT_ULTRASOUND = ("6823", "医用超声仪器及有关设备")
CAT_XRAY = ("6830", "医用X射线设备")
CAT_LAB = ("6840", "临床检验分析仪器")
CAT_BLOOD = ("6845", "体外循环及血液处理设备")
CAT_WARD = ("6856", "病房护理设备及器具")

DEVICES = {
    d.name: d
    for d in (
        Device(
            "呼吸机",
            (
                ("迈瑞", "SV300", "FW"),
                ("迈瑞", "SV600", "FW"),
                ("德尔格", "Savina 300", "ASF"),
                ("德尔格", "Evita V300", "ASK"),
                ("飞利浦", "V60", "US"),
                ("哈美顿", "C3", "HM"),
            ),
            150_000,
            450_000,
            CAT_OR,
            6,
        ),
        Device(
            "高流量呼吸湿化治疗仪",
            (("费雪派克", "AIRVO 2", "FP"), ("瑞迈特", "HFT700", "RM")),
            30_000,
            80_000,
            CAT_WARD,
            5,
        ),
        Device(
            "输液泵",
            (
                ("迈瑞", "BeneFusion VP5", "FV"),
                ("费森尤斯", "Agilia VP", "FK"),
                ("贝朗", "Infusomat Space", "BB"),
            ),
            8_000,
            20_000,
            CAT_OR,
            5,
        ),
        Device(
            "注射泵",
            (
                ("迈瑞", "BeneFusion SP5", "FS"),
                ("费森尤斯", "Agilia SP", "FK"),
                ("贝朗", "Perfusor Space", "BB"),
            ),
            6_000,
            15_000,
            CAT_OR,
            5,
        ),
        Device(
            "监护仪",
            (
                ("迈瑞", "BeneView T5", "DW"),
                ("迈瑞", "ePM 12M", "EP"),
                ("飞利浦", "IntelliVue MX450", "DE"),
                ("GE", "CARESCAPE B450", "SQ"),
                ("理邦", "iM8", "LB"),
            ),
            20_000,
            120_000,
            CAT_ELECTRONIC,
            6,
        ),
        Device(
            "除颤仪",
            (("迈瑞", "BeneHeart D6", "DF"), ("飞利浦", "HeartStart XL+", "US"), ("卓尔", "R Series", "AF")),
            60_000,
            180_000,
            CAT_ELECTRONIC,
            6,
        ),
        Device(
            "心电图机",
            (
                ("理邦", "SE-1200", "LB"),
                ("光电", "ECG-2350", "NK"),
                ("GE", "MAC 2000", "SC"),
                ("迈瑞", "BeneHeart R12", "R1"),
            ),
            15_000,
            60_000,
            CAT_ELECTRONIC,
            6,
        ),
        Device(
            "血液透析机",
            (
                ("费森尤斯", "4008S", "4S"),
                ("费森尤斯", "5008S", "5S"),
                ("贝朗", "Dialog+", "DG"),
                ("日机装", "DBB-27", "NK"),
            ),
            180_000,
            450_000,
            CAT_BLOOD,
            8,
        ),
        Device(
            "连续性血液净化设备",
            (("费森尤斯", "multiFiltrate", "MF"), ("百特", "Prismaflex", "PF")),
            300_000,
            650_000,
            CAT_BLOOD,
            8,
        ),
        Device(
            "麻醉机",
            (
                ("德尔格", "Fabius plus", "ARZ"),
                ("德尔格", "Primus", "ARP"),
                ("GE", "Aisys CS2", "AN"),
                ("迈瑞", "WATO EX-65", "WE"),
            ),
            250_000,
            900_000,
            CAT_OR,
            8,
        ),
        Device(
            "彩色多普勒超声诊断仪",
            (
                ("迈瑞", "Resona 7", "RS"),
                ("GE", "LOGIQ E10", "LG"),
                ("飞利浦", "EPIQ 7", "EQ"),
                ("西门子", "ACUSON Sequoia", "AC"),
            ),
            500_000,
            3_000_000,
            CAT_ULTRASOUND,
            6,
        ),
        Device(
            "数字化X射线摄影系统",
            (
                ("西门子", "Ysio Max", "YM"),
                ("飞利浦", "DigitalDiagnost C90", "DD"),
                ("联影", "uDR 780i", "UD"),
                ("万东", "新东方1000", "WD"),
            ),
            800_000,
            2_800_000,
            CAT_XRAY,
            10,
        ),
        Device(
            "全自动生化分析仪",
            (
                ("迈瑞", "BS-2000M", "BS"),
                ("西门子", "Atellica CH 930", "AT"),
                ("贝克曼", "AU5800", "AU"),
                ("罗氏", "cobas c 702", "RC"),
            ),
            600_000,
            2_500_000,
            CAT_LAB,
            8,
        ),
        Device(
            "全自动血细胞分析仪",
            (("迈瑞", "BC-6800", "BC"), ("希森美康", "XN-1000", "XN")),
            200_000,
            900_000,
            CAT_LAB,
            8,
        ),
        Device(
            "血气分析仪",
            (("雷度米特", "ABL90 FLEX", "AB"), ("沃芬", "GEM 3500", "GM")),
            80_000,
            260_000,
            CAT_LAB,
            6,
        ),
        Device(
            "婴儿培养箱",
            (("戴维", "YP-2000", "DV"), ("德尔格", "Isolette 8000", "IS"), ("GE", "Giraffe", "GF")),
            30_000,
            200_000,
            CAT_WARD,
            8,
        ),
        Device(
            "新生儿黄疸治疗仪",
            (("戴维", "XHZ-90", "DV"), ("宁波戴维", "NBB-KY", "NB")),
            8_000,
            30_000,
            CAT_WARD,
            6,
        ),
        Device("电动病床", (("八乐梦", "A5", "PB"), ("鱼跃", "DB-3", "YY")), 8_000, 60_000, CAT_WARD, 10),
        Device(
            "高频电刀",
            (("威利", "Force Triad", "FT"), ("爱尔博", "VIO 300D", "EB")),
            90_000,
            320_000,
            CAT_OR,
            8,
        ),
        Device(
            "手术无影灯",
            (("迈瑞", "HyLED 9700", "HL"), ("迈柯唯", "Volista 600", "VL")),
            120_000,
            380_000,
            CAT_OR,
            10,
        ),
        Device(
            "电动手术床",
            (("迈柯唯", "Alphamaxx", "AM"), ("迈瑞", "HyBase 6100", "HB")),
            180_000,
            600_000,
            CAT_OR,
            10,
        ),
        Device(
            "医用电动吸引器", (("鱼跃", "7E-A", "YE"), ("斯曼峰", "DX-23D", "SM")), 2_000, 6_000, CAT_WARD, 5
        ),
        Device(
            "压缩式雾化器", (("鱼跃", "403M", "YM"), ("欧姆龙", "NE-C28", "OM")), 2_000, 3_500, CAT_WARD, 5
        ),
        Device("医用分子筛制氧机", (("鱼跃", "7F-5", "YF"),), 3_000, 8_000, CAT_WARD, 6),
        Device("振动排痰仪", (("理邦", "VT-2", "VT"), ("鱼跃", "PT-1", "YP")), 12_000, 45_000, CAT_WARD, 6),
    )
}

# Department as the ledger writes it -> (devices it holds, location texts). 康复医学科 is not in
# the default mapping's department list on purpose: it lands with its name only.
DEPARTMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "重症医学科(ICU)": (
        (
            "呼吸机",
            "监护仪",
            "输液泵",
            "注射泵",
            "除颤仪",
            "高流量呼吸湿化治疗仪",
            "电动病床",
            "血气分析仪",
            "连续性血液净化设备",
            "医用电动吸引器",
        ),
        ("住院部5楼ICU", "住院部5楼ICU抢救间", "住院部5楼ICU设备间"),
    ),
    "急诊科": (
        ("监护仪", "除颤仪", "呼吸机", "心电图机", "输液泵", "注射泵", "医用电动吸引器"),
        ("门诊楼1楼急诊抢救室", "门诊楼1楼急诊留观室", "急诊EICU"),
    ),
    "麻醉科": (
        ("麻醉机", "监护仪", "注射泵", "输液泵", "除颤仪"),
        ("手术部麻醉准备间", "手术部复苏室(PACU)"),
    ),
    "心血管内科": (
        ("心电图机", "监护仪", "除颤仪", "输液泵", "注射泵", "电动病床"),
        ("住院部8楼心内科", "住院部8楼CCU"),
    ),
    "呼吸与危重症医学科": (
        ("呼吸机", "高流量呼吸湿化治疗仪", "监护仪", "输液泵", "医用分子筛制氧机", "振动排痰仪"),
        ("住院部9楼呼吸科", "住院部9楼RICU"),
    ),
    "手术室": (
        ("麻醉机", "监护仪", "高频电刀", "手术无影灯", "电动手术床", "除颤仪"),
        ("手术部OR-01", "手术部OR-02", "手术部OR-03", "手术部OR-05", "手术部OR-08"),
    ),
    "检验科": (
        ("全自动生化分析仪", "全自动血细胞分析仪", "血气分析仪"),
        ("医技楼2楼生化室", "医技楼2楼临检室"),
    ),
    "放射科": (("数字化X射线摄影系统",), ("医技楼1楼DR室1", "医技楼1楼DR室2", "急诊DR室")),
    "超声科": (("彩色多普勒超声诊断仪",), ("门诊楼3楼超声1诊室", "门诊楼3楼超声2诊室", "门诊楼3楼超声5诊室")),
    "儿科": (("监护仪", "输液泵", "注射泵", "压缩式雾化器"), ("住院部6楼儿科", "门诊楼2楼儿科雾化室")),
    "新生儿科": (
        ("婴儿培养箱", "新生儿黄疸治疗仪", "呼吸机", "监护仪", "注射泵"),
        ("住院部6楼NICU", "住院部6楼新生儿病房"),
    ),
    "血液净化中心": (
        ("血液透析机", "连续性血液净化设备", "监护仪"),
        ("医技楼4楼血透大厅", "医技楼4楼血透隔离区"),
    ),
    "设备科": (("输液泵", "注射泵", "监护仪", "除颤仪"), ("设备科周转库", "设备科维修间")),
    "康复医学科": (("电动病床", "振动排痰仪"), ("康复楼2楼",)),
}
WEIGHTS = {
    "重症医学科(ICU)": 80,
    "急诊科": 50,
    "麻醉科": 35,
    "心血管内科": 40,
    "呼吸与危重症医学科": 40,
    "手术室": 45,
    "检验科": 20,
    "放射科": 12,
    "超声科": 14,
    "儿科": 40,
    "新生儿科": 40,
    "血液净化中心": 45,
    "设备科": 55,
    "康复医学科": 14,
}
STATUSES = (("在用", 80), ("闲置", 6), ("维修", 4), ("待修", 2), ("报废", 3), ("封存", 2), ("借出", 3))
FUNDING = (("自有资金", 60), ("财政拨款", 30), ("科研经费", 6), ("捐赠", 4))
HEADER = (
    "序号",
    "资产编号",
    "资产名称",
    "规格型号",
    "生产厂家",
    "出厂编号",
    "使用科室",
    "存放地点",
    "购置日期",
    "原值",
    "累计折旧",
    "净值",
    "资产状态",
    "资产分类",
    "资金来源",
    "使用年限",
    "UDI",
)


@dataclass(frozen=True)
class Asset:
    card: str
    name: str
    model: str
    maker: str
    serial: str
    dept: str
    location: str
    acquired: date
    value: Decimal
    status: str
    category: tuple[str, str]
    funding: str
    life: int
    udi: str
    # How this row is written in the export (kept per asset so a re-export writes it the same way).
    date_text: str = ""
    value_text: str = ""
    category_text: str = ""
    net_override: Decimal | None = None


def pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def gtin14(rng: random.Random) -> str:
    body = "0694" + "".join(str(rng.randrange(10)) for _ in range(9))
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def date_text(rng: random.Random, d: date) -> str:
    style = rng.choices(range(6), weights=(35, 15, 15, 10, 10, 15))[0]
    return (
        d.isoformat(),
        f"{d.year}-{d.month}-{d.day}",
        d.strftime("%Y/%m/%d"),
        d.strftime("%Y%m%d"),
        d.strftime("%Y.%m.%d"),
        f"{d.year}年{d.month}月{d.day}日",
    )[style]


def money(v: Decimal) -> str:
    return f"{v:,.2f}"


def value_text(rng: random.Random, v: Decimal) -> str:
    style = rng.choices(range(5), weights=(60, 15, 10, 10, 5))[0]
    if style == 0:
        return money(v)
    if style == 1:
        return f"{v:.2f}"
    if style == 2:
        return f"￥{money(v)}"
    if style == 3:
        return f"{v:.0f}元" if v == v.to_integral_value() else f"{v:.2f}元"
    return f"{v:.2f}".translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))


def depreciation(asset: Asset, on: date) -> Decimal:
    months = (on.year - asset.acquired.year) * 12 + on.month - asset.acquired.month
    used = max(0, min(months, asset.life * 12))
    return (asset.value * used / (asset.life * 12)).quantize(CENT, ROUND_HALF_UP)


def make_assets(rng: random.Random, count: int, card_prefix: str, first_year: int = 2012) -> list[Asset]:
    depts = list(WEIGHTS)
    sequence: dict[int, int] = {}
    assets = []
    for _ in range(count):
        dept = rng.choices(depts, weights=[WEIGHTS[d] for d in depts])[0]
        device = DEVICES[rng.choice(DEPARTMENTS[dept][0])]
        maker, model, prefix = rng.choice(device.makers)
        acquired = date.fromordinal(
            rng.randrange(date(first_year, 1, 1).toordinal(), date(2024, 5, 31).toordinal())
        )
        sequence[acquired.year] = sequence.get(acquired.year, 0) + 1
        card = f"{card_prefix}-{acquired.year}-{sequence[acquired.year]:05d}"
        raw = Decimal(rng.randrange(device.low, device.high))
        value = (
            (raw / 100).quantize(Decimal(1)) * 100 if raw > 20_000 else raw + Decimal(rng.choice((0, 50, 80)))
        )
        value = value.quantize(CENT)
        status = "报废" if acquired.year < 2015 and rng.random() < 0.3 else pick(rng, STATUSES)
        if dept == "设备科" and rng.random() < 0.5:
            status = "闲置"
        serial = "" if rng.random() < 0.08 else f"{prefix}{acquired.year % 100:02d}{rng.randrange(10**6):06d}"
        udi = ""
        if acquired.year >= 2021 and serial and rng.random() < 0.7:
            udi = f"(01){gtin14(rng)}(11){acquired:%y%m%d}(21){serial}"
        category_text = device.category[0] if rng.random() < 0.5 else " ".join(device.category)
        assets.append(
            Asset(
                card=card,
                name=device.name,
                model=model,
                maker=maker,
                serial=serial,
                dept=dept,
                location=rng.choice(DEPARTMENTS[dept][1]),
                acquired=acquired,
                value=value,
                status=status,
                category=device.category,
                funding=pick(rng, FUNDING),
                life=device.life,
                udi=udi,
                date_text=date_text(rng, acquired),
                value_text=value_text(rng, value),
                category_text=category_text,
            )
        )
    return sorted(assets, key=lambda a: (a.acquired.year, a.card))


def ledger_rows(assets: list[Asset], on: date) -> tuple[list[list[str]], list[Decimal]]:
    rows, totals = [], [Decimal(0)] * 3
    for number, a in enumerate(assets, start=1):
        acc = depreciation(a, on)
        net = a.net_override if a.net_override is not None else a.value - acc
        rows.append(
            [
                str(number),
                a.card,
                a.name,
                a.model,
                a.maker,
                a.serial,
                a.dept,
                a.location,
                a.date_text,
                a.value_text,
                money(acc),
                money(net),
                a.status,
                a.category_text,
                a.funding,
                str(a.life),
                a.udi,
            ]
        )
        if a.value_text != "待定":
            totals = [totals[0] + a.value, totals[1] + acc, totals[2] + net]
    return rows, totals


def spoil(assets: list[Asset]) -> list[Asset]:
    """The deliberately bad rows, documented in examples/hrp/README.md (same order)."""
    bad = list(assets)
    bad[37] = replace(bad[37], date_text="2018-02-30")  # impossible calendar date
    bad[121] = replace(bad[121], date_text=bad[121].acquired.strftime("%d.%m.%Y"))  # day-first: fixable
    bad[260] = replace(bad[260], date_text=bad[260].acquired.strftime("%d.%m.%Y"))  # day-first: fixable
    bad[305] = replace(bad[305], value_text="待定")  # not a number
    bad[388] = replace(bad[388], card="")  # missing card number
    bad[452] = replace(bad[452], card=bad[201].card)  # duplicate card number
    return bad


def _first(assets: list[Asset], spoiled: set[int], wanted: Callable[[Asset], bool]) -> int:
    return next(i for i, a in enumerate(assets) if i not in spoiled and wanted(a))


def write_csv(
    path: Path, title_rows: list[list[str]], rows: list[list[str]], totals: list[Decimal], encoding: str
) -> None:
    out = io.StringIO()
    lines = [*title_rows, list(HEADER), *rows]
    lines.append(
        ["合计", "", "", "", "", "", "", "", "", money(totals[0]), money(totals[1]), money(totals[2])]
    )
    for line in lines:
        out.write(",".join(_quote(c) for c in line) + "\r\n")
    path.write_bytes(out.getvalue().encode(encoding))


def _quote(cell: str) -> str:
    return f'"{cell}"' if re.search(r'[",\r\n]', cell) else cell


def write_xlsx(path: Path, assets: list[Asset], rng: random.Random) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "设备台账"
    sheet.append(["设备台账（补充，2024年6月）"])
    sheet.append(
        [
            "卡片编号",
            "设备名称",
            "型号",
            "制造商",
            "序列号",
            "使用部门",
            "安装地点",
            "入账日期",
            "资产原值",
            "使用状态",
            "68分类码",
            "医疗器械唯一标识",
            "折旧年限",
        ]
    )
    for a in assets:
        # Most dates are real date cells; some were typed as text, as people do.
        when: object = (
            datetime.combine(a.acquired, datetime.min.time()) if rng.random() < 0.8 else a.date_text
        )
        sheet.append(
            [
                a.card,
                a.name,
                a.model,
                a.maker,
                a.serial,
                a.dept,
                a.location,
                when,
                float(a.value),
                a.status,
                a.category[0],
                a.udi or None,
                a.life,
            ]
        )
    for row in sheet.iter_rows(min_row=3, min_col=8, max_col=8):
        row[0].number_format = "yyyy-mm-dd"
    fixed = datetime(2024, 6, 30, 8, 0, 0)  # noqa: DTZ001 - document metadata, fixed for stable bytes
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.write_bytes(_stable_zip(buffer.getvalue(), fixed))


def _stable_zip(data: bytes, when: datetime) -> bytes:
    """Re-zip with fixed member timestamps and core.xml dates: same seed, same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                body = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp, body)
            member = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, body)
    return out.getvalue()


def main(out: Path = OUT) -> None:
    rng = random.Random(SEED)
    out.mkdir(exist_ok=True)
    assets = spoil(make_assets(rng, 530, "ZC"))
    title = [
        [f"{HOSPITAL}固定资产台账"],
        [f"导出日期：{EXPORT_DAY.isoformat()}", "", "", "", "", "", "", "", "", "单位：元"],
    ]
    rows, totals = ledger_rows(assets, EXPORT_DAY)
    write_csv(out / "固定资产台账_2024.csv", title, rows, totals, "gbk")

    # The re-export: exactly three asset rows differ (a relocation, a status change, a net value).
    updated = list(assets)
    spoiled = {37, 121, 201, 260, 305, 388, 452}
    moved = _first(
        assets, spoiled, lambda a: a.name == "监护仪" and a.dept == "急诊科" and a.status == "在用"
    )
    broken = _first(assets, spoiled, lambda a: a.name == "呼吸机" and a.status == "在用")
    revalued = _first(assets, spoiled, lambda a: a.value - depreciation(a, EXPORT_DAY) > 100_000)
    updated[moved] = replace(updated[moved], dept="重症医学科(ICU)", location="住院部5楼ICU抢救间")
    updated[broken] = replace(updated[broken], status="维修")
    # An impairment (减值) written down by the finance office: the net value drops by 20,000.
    impaired = assets[revalued].value - depreciation(assets[revalued], EXPORT_DAY) - Decimal(20_000)
    updated[revalued] = replace(updated[revalued], net_override=impaired)
    rows_update, totals_update = ledger_rows(updated, EXPORT_DAY)
    write_csv(out / "固定资产台账_2024_更新.csv", title, rows_update, totals_update, "gbk")

    small = make_assets(random.Random(SEED + 1), 20, "FY", first_year=2020)
    small_rows, small_totals = ledger_rows(small, EXPORT_DAY)
    write_csv(
        out / "固定资产台账_分院_UTF8_BOM.csv",
        [[f"{HOSPITAL}（东院区）固定资产台账"]],
        small_rows,
        small_totals,
        "utf-8-sig",
    )

    write_xlsx(
        out / "设备台账_补充.xlsx",
        make_assets(random.Random(SEED + 2), 60, "KP", first_year=2018),
        random.Random(SEED + 3),
    )
    for name, asset in (
        ("relocated", updated[moved]),
        ("status", updated[broken]),
        ("net value", updated[revalued]),
    ):
        print(f"changed ({name}): {asset.card}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
