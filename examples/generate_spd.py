# ruff: noqa: INP001, S311, T201 - a standalone script: seeded sample data, printed progress
"""Generate the synthetic SPD (consumables logistics) samples in examples/spd/ (deterministic).

Everything here is invented: the hospital, item codes, GTINs, lots, serials, suppliers, prices and
every movement come from a seeded random generator. The script simulates a quarter of stock
movements (receipts into the central store, distributions to departments, consumption scans,
disposals, a stocktake) so the files agree with each other, then writes them. Run from the
repository root:

    .venv/bin/python examples/generate_spd.py

Same seed, same bytes (the XLSX is re-zipped with fixed timestamps, as generate_hrp.py does).
"""

from __future__ import annotations

import io
import os
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

# openpyxl's XML bytes differ with and without lxml; the committed samples use the standard library.
os.environ.setdefault("OPENPYXL_LXML", "False")
import openpyxl  # after the setting above

sys.path.insert(0, str(Path(__file__).parent))
from generate_hrp import _stable_zip, gtin14  # the same GTIN and stable-zip helpers

SEED = 20240628
OUT = Path(__file__).with_name("spd")
HOSPITAL = "XX市第一人民医院"
CENTRAL = "中心库房"
QUARTER_START = date(2024, 4, 1)
STOCKTAKE_DAY = date(2024, 6, 28)
SUPPLIERS = ("华东医疗供应链有限公司", "康达医疗器械有限公司", "瑞华医药物流有限公司", "博远医疗科技有限公司")

# (name, specs, unit, category, price range, serial prefix or "" for low-value goods)
HIGH_VALUE = (
    (
        "药物洗脱冠脉支架",
        ("2.5*18mm", "2.75*18mm", "3.0*18mm", "3.0*24mm", "3.5*24mm"),
        "个",
        "血管介入类",
        (590, 780),
        "CS",
    ),
    ("PTCA球囊扩张导管", ("2.0*15mm", "2.5*15mm", "3.0*15mm"), "根", "血管介入类", (180, 420), "BC"),
    ("心脏起搏器", ("双腔", "单腔"), "台", "心脏节律类", (9800, 26000), "PM"),
    (
        "人工髋关节",
        ("股骨柄 10#", "股骨柄 12#", "髋臼杯 52mm", "髋臼杯 54mm", "陶瓷球头 36mm"),
        "个",
        "骨科植入类",
        (1800, 7200),
        "HJ",
    ),
    ("人工膝关节", ("股骨髁 3#", "胫骨平台 3#", "胫骨垫片 10mm"), "个", "骨科植入类", (2200, 5600), "KJ"),
    ("锁定接骨板", ("6孔", "8孔", "10孔"), "块", "骨科植入类", (900, 2600), "LP"),
    ("管型吻合器", ("25mm", "29mm", "32mm"), "把", "外科吻合类", (1200, 2400), "ST"),
    ("直线切割吻合器", ("60mm", "80mm"), "把", "外科吻合类", (1500, 3200), "LC"),
    ("超声刀头", ("HAR36", "HAR23"), "把", "能量器械类", (2600, 4800), "UH"),
    ("中心静脉导管包", ("双腔 7Fr", "三腔 7Fr"), "套", "注射穿刺类", (260, 480), "CV"),
    ("血液透析器", ("1.6平方米", "1.8平方米"), "支", "血液净化类", (95, 160), "HD"),
    ("造影导管", ("5F JL4", "5F JR4", "5F PIG"), "根", "血管介入类", (120, 380), "AC"),
    ("冠脉导引导丝", ("0.014in 190cm", "0.014in 300cm"), "根", "血管介入类", (260, 680), "GW"),
)
LOW_VALUE = (
    ("静脉留置针", ("18G", "20G", "22G", "24G"), "支", "注射穿刺类", (3, 12)),
    ("一次性使用输液器", ("带针 0.7mm", "精密过滤", "避光"), "套", "注射穿刺类", (2, 18)),
    ("一次性使用无菌注射器", ("1ml", "5ml", "10ml", "20ml", "50ml"), "支", "注射穿刺类", (1, 4)),
    ("医用外科口罩", ("成人 挂耳式", "儿童 挂耳式"), "个", "防护用品类", (1, 2)),
    ("医用防护口罩", ("N95 折叠式",), "个", "防护用品类", (3, 8)),
    ("一次性医用检查手套", ("乳胶 S", "乳胶 M", "丁腈 M", "丁腈 L"), "副", "防护用品类", (1, 2)),
    ("无菌医用纱布块", ("5*5cm 8层", "10*10cm 8层"), "块", "敷料类", (1, 3)),
    ("一次性导尿包", ("14Fr", "16Fr"), "套", "护理类", (12, 28)),
    ("一次性吸痰管", ("F10", "F12", "F14"), "根", "护理类", (1, 4)),
    ("输液贴", ("5*6cm",), "片", "敷料类", (1, 2)),
    ("一次性采血针", ("0.7mm", "0.8mm"), "支", "检验耗材类", (1, 2)),
    ("真空采血管", ("紫头 2ml", "红头 5ml", "蓝头 2.7ml", "绿头 4ml"), "支", "检验耗材类", (1, 3)),
    ("透明敷料", ("6*7cm", "10*12cm"), "片", "敷料类", (3, 9)),
    ("一次性引流袋", ("1000ml",), "个", "护理类", (3, 6)),
    ("一次性胃管", ("F14", "F16"), "根", "护理类", (4, 9)),
    ("一次性吸氧面罩", ("成人", "儿童"), "个", "呼吸类", (4, 9)),
    ("一次性鼻氧管", ("成人双腔",), "根", "呼吸类", (1, 3)),
    ("心电电极片", ("成人 圆形",), "片", "监护类", (1, 2)),
    ("输液延长管", ("150cm",), "根", "注射穿刺类", (2, 5)),
    ("一次性三通阀", ("标准",), "个", "注射穿刺类", (2, 5)),
    ("碘伏棉签", ("8cm",), "盒", "消毒类", (4, 9)),
    ("一次性手术衣", ("L", "XL"), "件", "防护用品类", (12, 26)),
    ("一次性医用帽", ("条形",), "个", "防护用品类", (1, 2)),
    ("医用胶带", ("1.25cm*9.1m", "2.5cm*9.1m"), "卷", "敷料类", (2, 6)),
    ("气管插管", ("ID 7.0", "ID 7.5", "ID 8.0"), "根", "呼吸类", (18, 45)),
    ("一次性使用麻醉面罩", ("3#", "4#"), "个", "呼吸类", (9, 20)),
    ("血液透析管路", ("成人",), "套", "血液净化类", (38, 70)),
    ("一次性使用活检钳", ("2.3mm",), "把", "内镜耗材类", (45, 120)),
    ("医用缝合线", ("3-0 可吸收", "4-0 可吸收", "2-0 丝线"), "包", "外科缝合类", (18, 60)),
    ("一次性使用电刀笔", ("标准",), "支", "能量器械类", (25, 60)),
    ("一次性使用冲洗器", ("50ml",), "支", "护理类", (3, 7)),
    ("无菌手术刀片", ("11#", "22#"), "片", "外科类", (1, 2)),
    ("医用弹力绷带", ("10cm*4.5m",), "卷", "敷料类", (6, 14)),
    ("一次性使用雾化器", ("成人", "儿童"), "套", "呼吸类", (9, 18)),
    ("一次性灌肠袋", ("1000ml",), "个", "护理类", (3, 6)),
    ("一次性尿杯", ("40ml",), "个", "检验耗材类", (1, 2)),
    ("医用冰袋", ("一次性",), "个", "护理类", (2, 5)),
    ("一次性使用输血器", ("标准",), "套", "注射穿刺类", (4, 9)),
    ("一次性使用换药包", ("标准",), "套", "护理类", (5, 12)),
    ("一次性使用血氧探头", ("成人", "儿童"), "个", "监护类", (18, 45)),
    ("可吸收止血纱布", ("5*7.5cm", "10*20cm"), "片", "外科类", (60, 240)),
    ("一次性使用止血带", ("成人",), "根", "检验耗材类", (1, 2)),
    ("一次性使用鼻胃肠管", ("F12",), "根", "护理类", (28, 60)),
    ("医用棉球", ("0.5g",), "包", "敷料类", (2, 5)),
    ("一次性使用备皮包", ("标准",), "套", "护理类", (3, 7)),
    ("口咽通气道", ("8cm", "9cm"), "个", "呼吸类", (2, 6)),
)

# Department -> items it draws (by name prefix) and how many it gets per distribution.
DEPARTMENTS: dict[str, tuple[tuple[str, ...], int]] = {
    "心导管室": (
        (
            "药物洗脱冠脉支架",
            "PTCA球囊扩张导管",
            "心脏起搏器",
            "造影导管",
            "冠脉导引导丝",
            "一次性使用无菌注射器",
        ),
        6,
    ),
    "骨科": (("人工髋关节", "人工膝关节", "锁定接骨板", "医用弹力绷带", "无菌医用纱布块"), 5),
    "手术室": (
        (
            "管型吻合器",
            "直线切割吻合器",
            "超声刀头",
            "一次性手术衣",
            "一次性使用电刀笔",
            "无菌手术刀片",
            "医用缝合线",
            "无菌医用纱布块",
            "气管插管",
            "一次性使用麻醉面罩",
        ),
        8,
    ),
    "重症医学科": (
        (
            "静脉留置针",
            "一次性使用输液器",
            "中心静脉导管包",
            "一次性吸痰管",
            "透明敷料",
            "心电电极片",
            "输液贴",
            "一次性使用无菌注射器",
            "医用外科口罩",
        ),
        60,
    ),
    "急诊科": (
        (
            "静脉留置针",
            "一次性使用输液器",
            "医用外科口罩",
            "一次性医用检查手套",
            "一次性采血针",
            "真空采血管",
        ),
        80,
    ),
    "儿科": (("静脉留置针", "一次性使用雾化器", "医用外科口罩", "一次性吸氧面罩"), 50),
    "血液净化中心": (("血液透析器", "血液透析管路", "一次性使用冲洗器"), 40),
    "普外科": (("一次性引流袋", "一次性胃管", "一次性导尿包", "一次性灌肠袋"), 30),
}
# Items deliberately left below (or just above) their minimum once everything has moved.
BELOW_MINIMUM = (
    (CENTRAL, "医用外科口罩", "成人 挂耳式"),
    ("手术室", "管型吻合器", "29mm"),
    ("心导管室", "药物洗脱冠脉支架", "3.0*18mm"),
    ("重症医学科", "静脉留置针", "22G"),
)
NEAR_MINIMUM = ((CENTRAL, "一次性使用输液器", "带针 0.7mm"), ("骨科", "人工髋关节", "股骨柄 12#"))
# Lots of these arrive in bulk, so the central store still holds some after the departments drew theirs.
BULK = {("医用外科口罩", "成人 挂耳式"): 2500, ("一次性使用输液器", "带针 0.7mm"): 2000}


@dataclass
class Item:
    code: str
    name: str
    spec: str
    unit: str
    category: str
    price: Decimal
    supplier: str
    gtin: str  # GTIN-14, "" when the item has none
    high: bool
    prefix: str


@dataclass
class Lot:
    item: Item
    lot: str
    expiry: date
    received: date
    quantity: int
    serials: list[str] = field(default_factory=list)


@dataclass
class Store:
    """Stock on hand per (item code, place, lot), with serials for serial-tracked goods."""

    qty: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    serials: dict[tuple[str, str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def move(self, code: str, lot: str, quantity: int, source: str | None, target: str | None) -> list[str]:
        moved: list[str] = []
        if source is not None:
            key = (code, source, lot)
            if self.qty[key] < quantity:
                raise ValueError(f"the simulation moves {quantity} of {key}, which holds {self.qty[key]}")
            self.qty[key] -= quantity
            moved, self.serials[key] = self.serials[key][:quantity], self.serials[key][quantity:]
        if target is not None:
            self.qty[(code, target, lot)] += quantity
            self.serials[(code, target, lot)].extend(moved)
        return moved

    def on_hand(self, code: str, place: str) -> int:
        return sum(q for (c, p, _), q in self.qty.items() if c == code and p == place)

    def lots(self, code: str, place: str) -> list[str]:
        return sorted(lot for (c, p, lot), q in self.qty.items() if c == code and p == place and q > 0)


def catalogue(rng: random.Random) -> list[Item]:
    items: list[Item] = []
    for number, (name, specs, unit, category, (low, high), prefix) in enumerate(HIGH_VALUE):
        for k, spec in enumerate(specs):
            items.append(
                Item(
                    f"GZ{number + 1:02d}{k + 1:03d}",
                    name,
                    spec,
                    unit,
                    category,
                    Decimal(rng.randrange(low, high)),
                    rng.choice(SUPPLIERS),
                    gtin14(rng),
                    high=True,
                    prefix=prefix,
                )
            )
    for number, (name, specs, unit, category, (low, high)) in enumerate(LOW_VALUE):
        for k, spec in enumerate(specs):
            price = Decimal(rng.randrange(low * 100, high * 100 + 1)) / 100
            gtin = gtin14(rng) if rng.random() < 0.7 else ""
            items.append(
                Item(
                    f"DZ{number + 1:02d}{k + 1:03d}",
                    name,
                    spec,
                    unit,
                    category,
                    price.quantize(Decimal("0.01")),
                    rng.choice(SUPPLIERS),
                    gtin,
                    high=False,
                    prefix="",
                )
            )
    return items


def find(items: list[Item], name: str, spec: str) -> Item:
    return next(i for i in items if i.name == name and i.spec == spec)


def lot_code(rng: random.Random, when: date) -> str:
    return f"{when:%y%m}{rng.choice('ABCDEFGH')}{rng.randrange(100, 999)}"


def barcode(rng: random.Random, item: Item, lot: Lot, serial: str | None, form: str) -> str:
    """A GS1 barcode of one unit, as a scanner or label printer writes it."""
    expiry = f"{lot.expiry:%y%m%d}"
    if form == "hri":
        return f"(01){item.gtin}(17){expiry}(10){lot.lot}" + (f"(21){serial}" if serial else "")
    if form == "link":
        return (
            f"https://id.gs1.org/01/{item.gtin}/10/{lot.lot}"
            + (f"/21/{serial}" if serial else "")
            + f"?17={expiry}"
        )
    prefix = rng.choice(("", "]d2", "]C1"))
    separator = "\x1d" if form == "gs" else "<GS>"
    # The lot is variable-length: a GS ends it when a serial follows.
    return f"{prefix}01{item.gtin}17{expiry}10{lot.lot}" + (f"{separator}21{serial}" if serial else "")


@dataclass
class Simulation:
    items: list[Item]
    lots: list[Lot] = field(default_factory=list)
    store: Store = field(default_factory=Store)
    receipts: list[list[str]] = field(default_factory=list)
    distributions: list[list[str]] = field(default_factory=list)
    scans: list[list[object]] = field(default_factory=list)
    disposals: list[list[str]] = field(default_factory=list)
    stocktake: list[list[str]] = field(default_factory=list)
    thresholds: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def receive(sim: Simulation, rng: random.Random) -> None:
    """Receipts into the central store, April to mid-June, one or two lots per item."""
    forms = ["hri", "gs", "hri", "gs", "hri"]
    for item in sim.items:
        for first in range(1 if item.high and rng.random() < 0.4 else 2):
            when = QUARTER_START + timedelta(
                days=rng.randrange(0, 30) if first == 0 else rng.randrange(35, 75)
            )
            quantity = rng.randrange(8, 24) if item.high else rng.choice((200, 300, 500, 800, 1000, 2000))
            quantity = BULK.get((item.name, item.spec), quantity)
            lot = Lot(
                item, lot_code(rng, when), when + timedelta(days=rng.randrange(400, 1100)), when, quantity
            )
            if item.high:
                lot.serials = [f"{item.prefix}{when:%y}{rng.randrange(10**6):06d}" for _ in range(quantity)]
            sim.lots.append(lot)
    # The scripted lots: a short-dated 22G lot that expires in the store, and a recalled stapler lot.
    needle = find(sim.items, "静脉留置针", "22G")
    sim.lots.append(Lot(needle, "2311C417", date(2024, 5, 31), date(2024, 4, 3), 200))
    stapler = find(sim.items, "管型吻合器", "29mm")
    sim.lots = [lot for lot in sim.lots if lot.item is not stapler]
    recalled = Lot(stapler, "2404R007", date(2026, 4, 30), date(2024, 5, 10), 20)
    recalled.serials = [f"ST24R{n:05d}" for n in range(1, 21)]
    sim.lots.append(recalled)
    sim.lots.sort(key=lambda lot: (lot.received, lot.item.code, lot.lot))
    # One Digital Link (from a QR label) and one supplier's private code no GS1 parser reads.
    special = {"link": 17, "private": 41}
    for index, lot in enumerate(sim.lots):
        number = index + 1
        item = lot.item
        serial = lot.serials[0] if lot.serials else None
        code = ""
        if item.gtin:
            form = forms[index % len(forms)]
            for name, start in list(special.items()):
                if index >= start:
                    form = name
                    del special[name]
                    break
            code = (
                f"GYS-{item.code}-{lot.lot}" if form == "private" else barcode(rng, item, lot, serial, form)
            )
        doc = f"RK{lot.received:%Y%m%d}-{number % 7 + 1:03d}"
        sim.store.move(item.code, lot.lot, lot.quantity, None, CENTRAL)
        sim.store.serials[(item.code, CENTRAL, lot.lot)] = list(lot.serials)
        amount = item.price * lot.quantity
        sim.receipts.append(
            [
                doc,
                lot.received.isoformat(),
                CENTRAL,
                item.code,
                item.name,
                item.spec,
                item.unit,
                lot.lot,
                lot.expiry.isoformat(),
                ";".join(lot.serials),
                str(lot.quantity),
                f"{item.price:.2f}",
                f"{amount:.2f}",
                item.supplier,
                f"PO2024{lot.received:%m}{number:04d}",
                code,
            ]
        )


def distribute(sim: Simulation, rng: random.Random) -> None:
    """Central store -> departments, May and June, FIFO over lots that do not expire soon."""
    rows: list[tuple[date, str, Item, int]] = []
    for dept, (wanted, size) in DEPARTMENTS.items():
        for item in (i for i in sim.items if i.name in wanted):
            recalled = (item.name, item.spec) == ("管型吻合器", "29mm")
            for _ in range(2 if recalled else rng.choice((1, 2))):
                when = date(2024, 5, 15 if recalled else 2) + timedelta(days=rng.randrange(0, 36))
                quantity = max(1, size // 4) if item.high else size * rng.randrange(2, 6)
                if recalled:
                    quantity = 6  # twice: 12 of the recalled lot reach the operating rooms
                rows.append((when, dept, item, quantity))
    rows.sort(key=lambda r: (r[0], r[1], r[2].code))
    by_lot = {(lot.item.code, lot.lot): lot for lot in sim.lots}
    counter: dict[tuple[date, str], str] = {}
    for when, dept, item, quantity in rows:
        left = quantity
        usable = [
            lot
            for lot in sim.store.lots(item.code, CENTRAL)
            if by_lot[(item.code, lot)].received <= when
            and by_lot[(item.code, lot)].expiry > when + timedelta(days=60)
        ]
        for lot_no in sorted(usable, key=lambda lt: by_lot[(item.code, lt)].expiry):
            take = min(left, sim.store.qty[(item.code, CENTRAL, lot_no)])
            if take <= 0:
                continue
            moved = sim.store.move(item.code, lot_no, take, CENTRAL, dept)
            doc = counter.setdefault((when, dept), f"PS{when:%Y%m%d}-{len(counter) + 1:03d}")
            sim.distributions.append(
                [
                    doc,
                    when.isoformat(),
                    CENTRAL,
                    dept,
                    item.code,
                    item.name,
                    item.spec,
                    lot_no,
                    ";".join(moved),
                    str(take),
                    item.unit,
                ]
            )
            left -= take
            if left == 0:
                break


def consume(sim: Simulation, rng: random.Random) -> None:
    """Scans in the departments during June: one row per serial-tracked unit, batches otherwise."""
    spots = {
        "手术室": ("OR-01", "OR-02", "OR-03", "OR-05"),
        "心导管室": ("DSA-1", "DSA-2"),
        "骨科": ("OR-08",),
        "重症医学科": ("ICU-03床", "ICU-07床", "ICU-12床"),
        "急诊科": ("抢救室2床", "留观室5床"),
        "儿科": ("儿科6病区", "雾化室"),
        "血液净化中心": ("透析大厅", "隔离区"),
        "普外科": ("普外11床", "普外23床"),
    }
    by_lot = {(lot.item.code, lot.lot): lot for lot in sim.lots}
    rows: list[tuple[datetime, list[object]]] = []
    charge = 0
    for (code, place, lot_no), quantity in sorted(sim.store.qty.items()):
        if place == CENTRAL or quantity <= 0:
            continue
        lot = by_lot[(code, lot_no)]
        item = lot.item
        if item.high:
            used = quantity - 1 if (item.name, item.spec) != ("管型吻合器", "29mm") else 7
            used = max(0, min(used, quantity))
            units = [(1, s) for s in sim.store.serials[(code, place, lot_no)][:used]]
        else:
            used = quantity * rng.randrange(40, 80) // 100
            if (place, item.name, item.spec) == ("重症医学科", "静脉留置针", "22G"):
                used = quantity - 20
            units = [(used, None)] if used else []
        for count, serial in units:
            charge += 1
            start = datetime(2024, 6, 1, 8)  # noqa: DTZ001 - naive site time, as exports write it
            moment = start + timedelta(minutes=rng.randrange(0, 26 * 24 * 60))
            form = ("hri", "hri", "alias", "link")[charge % 4] if item.gtin else ""
            scan = barcode(rng, item, lot, serial, form) if form else ""
            rows.append(
                (
                    moment,
                    [
                        f"JF{moment:%Y%m%d}{charge:05d}",
                        moment.strftime("%Y-%m-%d %H:%M:%S"),
                        place,
                        rng.choice(spots[place]),
                        f"ZY{rng.randrange(10**7):07d}",
                        item.code,
                        item.name,
                        lot_no,
                        serial or "",
                        scan,
                        count,
                    ],
                )
            )
            sim.store.move(code, lot_no, count, place, None)
    rows.sort(key=lambda r: (r[0], str(r[1][0])))
    sim.scans = [r[1] for r in rows]


def dispose(sim: Simulation) -> None:
    """June disposals: the expired 22G lot, damaged sets, the recalled stapler units still in store."""
    needle = find(sim.items, "静脉留置针", "22G")
    expired = sim.store.qty[(needle.code, CENTRAL, "2311C417")]
    infusion = find(sim.items, "一次性使用输液器", "带针 0.7mm")
    damaged_lot = sim.store.lots(infusion.code, CENTRAL)[0]
    stapler = find(sim.items, "管型吻合器", "29mm")
    recalled = sim.store.serials[(stapler.code, CENTRAL, "2404R007")][:5]
    lot_of = {(lot.item.code, lot.lot): lot for lot in sim.lots}
    for number, (when, item, lot_no, quantity, serials, reason, note) in enumerate(
        (
            (date(2024, 6, 5), needle, "2311C417", expired, [], "过期", "效期2024-05-31，整批报废"),
            (date(2024, 6, 12), infusion, damaged_lot, 20, [], "包装破损", "运输挤压"),
            (date(2024, 6, 18), stapler, "2404R007", 5, recalled, "召回", "厂家召回通知，退回供应商"),
        ),
        start=1,
    ):
        sim.store.move(item.code, lot_no, quantity, CENTRAL, None)
        sim.disposals.append(
            [
                f"BS202406-{number:03d}",
                when.isoformat(),
                CENTRAL,
                item.code,
                item.name,
                lot_no,
                lot_of[(item.code, lot_no)].expiry.isoformat(),
                ";".join(serials),
                str(quantity),
                reason,
                note,
            ]
        )


def count(sim: Simulation, rng: random.Random) -> None:
    """The stocktake of the central store on 28 June: two lines differ from the books."""
    keys = sorted(k for k, q in sim.store.qty.items() if k[1] == CENTRAL and q > 0)
    chosen = sorted(rng.sample(keys, 24))
    gauze = next(k for k in keys if find(sim.items, "无菌医用纱布块", "5*5cm 8层").code == k[0])
    gloves = next(k for k in keys if find(sim.items, "一次性医用检查手套", "丁腈 M").code == k[0])
    for key in sorted({*chosen, gauze, gloves}):
        code, _, lot_no = key
        item = next(i for i in sim.items if i.code == code)
        book = sim.store.qty[key]
        counted, reason = book, ""
        if key == gauze:
            counted, reason = book - 30, "盘亏：拆包破损未登记"
        elif key == gloves:
            counted, reason = book + 100, "盘盈：入库漏登"
        sim.store.qty[key] = counted
        sim.stocktake.append(
            [
                "PD20240628-001",
                STOCKTAKE_DAY.isoformat(),
                CENTRAL,
                code,
                item.name,
                item.spec,
                lot_no,
                str(book),
                str(counted),
                reason,
            ]
        )


def limits(sim: Simulation, rng: random.Random) -> None:
    """Minimum / maximum per place, set so the documented items end below or near their minimum."""
    places: dict[tuple[str, str], int] = {}
    for item in sim.items:
        places[(CENTRAL, item.code)] = sim.store.on_hand(item.code, CENTRAL)
    for dept, (wanted, _) in DEPARTMENTS.items():
        for item in (i for i in sim.items if i.name in wanted):
            places[(dept, item.code)] = sim.store.on_hand(item.code, dept)
    below = {(p, find(sim.items, n, s).code) for p, n, s in BELOW_MINIMUM}
    near = {(p, find(sim.items, n, s).code) for p, n, s in NEAR_MINIMUM}
    for (place, code), final in sorted(places.items(), key=lambda kv: (kv[0][0] != CENTRAL, kv[0])):
        item = next(i for i in sim.items if i.code == code)
        if (place, code) in below:
            minimum = final + max(2, final // 2)
        elif (place, code) in near:
            minimum = max(1, final - max(1, final // 20))
        else:
            minimum = max(1, final // 3) if final else rng.choice((2, 5, 10))
            if minimum >= final and final:
                minimum = final - 1
        maximum = max(minimum * 3, minimum + 5)
        reorder = minimum + (maximum - minimum) // 4
        sim.thresholds.append(
            [place, code, item.name, item.spec, item.unit, str(minimum), str(maximum), str(reorder)]
        )
        if (place, code) in below or (place, code) in near:
            state = "below" if final < minimum else "near"
            sim.notes.append(
                f"{place} {code} {item.name} {item.spec}: {final} on hand, minimum {minimum} ({state})"
            )


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    out = io.StringIO()
    for row in rows:
        out.write(",".join(_quote(str(c)) for c in row) + "\r\n")
    path.write_bytes(out.getvalue().encode(encoding))


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if re.search(r'[",\r\n]', cell) else cell


def spoil(sim: Simulation) -> None:
    """The deliberately bad rows, documented in examples/spd/README.md."""
    # A label from another lot: the barcode's (10) disagrees with the row's 批号.
    # Its lot is never issued, so stock elsewhere does not depend on the row that fails.
    issued = {(r[4], r[7]) for r in sim.distributions}
    row = next(
        r for r in sim.receipts[9:] if r[15].startswith("(01)") and r[9] and (r[3], r[7]) not in issued
    )
    other = row[7][:-1] + ("8" if row[7][-1] != "8" else "7")
    row[15] = row[15].replace(f"(10){row[7]}", f"(10){other}")
    # A department the hospital's code list does not know.
    index = next(i for i, r in enumerate(sim.distributions) if i >= 30 and not r[8])
    sim.distributions.insert(index, [*sim.distributions[index][:3], "眼科", *sim.distributions[index][4:]])
    sim.scans[40][1] = "2024-06-31 10:20:00"  # 31 June does not exist


def write(sim: Simulation, out: Path, rng: random.Random) -> None:
    master = [
        [f"{HOSPITAL} SPD物资字典"],
        ["导出时间：2024-06-30 18:00"],
        [
            "序号",
            "物资编码",
            "物资名称",
            "规格型号",
            "单位",
            "商品条码(GTIN)",
            "UDI-DI(产品标识)",
            "高值耗材",
            "分类",
            "供应商",
            "单价(元)",
            "注册证号",
        ],
    ]
    for n, item in enumerate(sim.items, start=1):
        flag = "是" if item.high else "否"
        if n == 57:
            flag = "待定"  # deliberately bad: not a known flag word
        gtin, di = (item.gtin, "") if not item.high else ("", item.gtin) if n % 3 else (item.gtin, item.gtin)
        registration = f"国械注准2022{rng.randrange(10**7):07d}" if item.high else ""
        master.append(
            [
                str(n),
                item.code,
                item.name,
                item.spec,
                item.unit,
                gtin,
                di,
                flag,
                item.category,
                item.supplier,
                f"{item.price:.2f}",
                registration,
            ]
        )
    write_csv(out / "01_物资字典.csv", master, "gbk")

    header = ["库房/科室", "物资编码", "物资名称", "规格型号", "单位", "最低库存", "最高库存", "补货点"]
    write_csv(out / "02_库存上下限.csv", [header, *sim.thresholds], "utf-8-sig")

    receipts = [
        [f"{HOSPITAL} 采购入库明细（2024年第二季度）"],
        [
            "入库单号",
            "入库日期",
            "库房",
            "物资编码",
            "物资名称",
            "规格型号",
            "单位",
            "批号",
            "有效期",
            "序列号",
            "数量",
            "单价",
            "金额",
            "供应商",
            "采购订单号",
            "条码",
        ],
        *sim.receipts,
    ]
    total = sum(Decimal(r[12]) for r in sim.receipts)
    receipts.append(
        [
            "合计",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            str(sum(int(r[10]) for r in sim.receipts)),
            "",
            f"{total:.2f}",
        ]
    )
    write_csv(out / "03_入库单_2024Q2.csv", receipts, "gbk")

    distributions = [
        [
            "配送单号",
            "出库日期",
            "出库库房",
            "领用科室",
            "物资编码",
            "物资名称",
            "规格型号",
            "批号",
            "序列号",
            "数量",
            "单位",
        ],
        *sim.distributions,
        ["制单人：王晓", "审核人：李敏"],
    ]
    write_csv(out / "04_出库配送单_2024Q2.csv", distributions, "utf-8")

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "消耗扫码"
    sheet.append(
        [
            "计费单号",
            "消耗时间",
            "消耗科室",
            "使用位置",
            "住院号",
            "物资编码",
            "物资名称",
            "批号",
            "序列号",
            "条码",
            "数量",
        ]
    )
    for row in sim.scans:
        sheet.append(row)
    fixed = datetime(2024, 6, 30, 18, 0, 0)  # noqa: DTZ001 - document metadata, fixed for stable bytes
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    buffer = io.BytesIO()
    workbook.save(buffer)
    (out / "05_消耗扫码_2024-06.xlsx").write_bytes(_stable_zip(buffer.getvalue(), fixed))

    disposals = [
        [
            "报损单号",
            "报损日期",
            "库房/科室",
            "物资编码",
            "物资名称",
            "批号",
            "有效期",
            "序列号",
            "数量",
            "报损原因",
            "备注",
        ],
        *sim.disposals,
    ]
    write_csv(out / "06_报损报废单_2024-06.csv", disposals, "utf-8")

    stocktake = [
        [
            "盘点单号",
            "盘点日期",
            "盘点库房",
            "物资编码",
            "物资名称",
            "规格型号",
            "批号",
            "账面数量",
            "实盘数量",
            "差异原因",
        ],
        *sim.stocktake,
    ]
    write_csv(out / "07_盘点单_2024-06-28.csv", stocktake, "gbk")


def main(out: Path = OUT) -> None:
    rng = random.Random(SEED)
    out.mkdir(exist_ok=True)
    sim = Simulation(items=catalogue(rng))
    receive(sim, rng)
    distribute(sim, rng)
    consume(sim, rng)
    dispose(sim)
    count(sim, rng)
    limits(sim, rng)
    spoil(sim)
    write(sim, out, rng)
    print(
        f"{len(sim.items)} items, {len(sim.receipts)} receipt lines, "
        f"{len(sim.distributions)} distribution lines, "
        f"{len(sim.scans)} scans, {len(sim.disposals)} disposals, {len(sim.stocktake)} stocktake lines, "
        f"{len(sim.thresholds)} thresholds"
    )
    for note in sim.notes:
        print(note)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
