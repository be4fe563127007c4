# ruff: noqa: INP001, S311, T201 - a standalone script: seeded sample data, printed progress
"""Generate the synthetic HRP asset-document samples in examples/hrp/ (deterministic).

The documents (验收单, 调拨单, 计量证书, 维保合同, 折旧明细, 报废处置单) name the assets of the
ledger sample: the ledger is rebuilt with generate_hrp.py's own seed and functions, so every card
number, department and value here is one that ledger holds. Everything is invented. Run from the
repository root (after generate_hrp.py, which it does not change):

    .venv/bin/python examples/generate_hrp_documents.py

Same seed, same bytes. File names start with 资产业务_ so `hub demo`, which loads files in name
order, reads them after the ledgers (固定资产台账…, 设备台账…) they refer to.
"""

from __future__ import annotations

import io
import os
import random
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

# openpyxl's XML bytes differ with and without lxml; the committed samples use the standard library.
os.environ.setdefault("OPENPYXL_LXML", "False")
import openpyxl  # after the setting above

sys.path.insert(0, str(Path(__file__).parent))
import generate_hrp as ledger  # the ledger's seed, assets and helpers

if TYPE_CHECKING:
    from collections.abc import Sequence

SEED = 20240701
OUT = Path(__file__).with_name("hrp")
SPOILED = {37, 121, 201, 260, 305, 388, 452}  # generate_hrp.spoil's rows (and the duplicate's original)
STAFF = ("赵工", "钱工", "孙工", "李工", "周工")
METROLOGY = (
    "监护仪",
    "除颤仪",
    "心电图机",
    "呼吸机",
    "输液泵",
    "注射泵",
    "婴儿培养箱",
    "血气分析仪",
    "麻醉机",
    "高频电刀",
)
SERVICED = (
    "彩色多普勒超声诊断仪",
    "数字化X射线摄影系统",
    "全自动生化分析仪",
    "全自动血细胞分析仪",
    "连续性血液净化设备",
    "麻醉机",
    "血液透析机",
)
PROVIDERS = ("XX市计量检定测试院", "XX省医疗器械检验研究院", "XX市计量检定测试院", "医学工程科（自校）")


def ledger_assets() -> list[ledger.Asset]:
    """The assets of 固定资产台账_2024.csv that land under the default mapping."""
    assets = ledger.spoil(ledger.make_assets(random.Random(ledger.SEED), 530, "ZC"))
    return [a for i, a in enumerate(assets) if i not in SPOILED]


def write_csv(path: Path, rows: Sequence[Sequence[str]], encoding: str) -> None:
    out = io.StringIO()
    for row in rows:
        out.write(",".join(ledger._quote(c) for c in row) + "\r\n")
    path.write_bytes(out.getvalue().encode(encoding))


def acceptance(assets: list[ledger.Asset], rng: random.Random, out: Path) -> None:
    rows = [
        [
            "验收单号",
            "资产编号",
            "资产名称",
            "规格型号",
            "使用科室",
            "验收日期",
            "验收结论",
            "验收人",
            "启用日期",
        ]
    ]
    recent = [a for a in assets if a.acquired >= date(2024, 1, 1)]
    for n, a in enumerate(sorted(recent, key=lambda a: a.acquired), start=1):
        accepted = min(a.acquired + timedelta(days=rng.randrange(3, 12)), ledger.EXPORT_DAY)
        started = "" if rng.random() < 0.2 else (accepted + timedelta(days=rng.randrange(1, 5))).isoformat()
        result = "有条件通过" if n == 4 else "合格"
        if n == 9:
            result = "待复核"  # deliberately bad: not a known acceptance result
        rows.append(
            [
                f"YS2024-{n:04d}",
                a.card,
                a.name,
                a.model,
                a.dept,
                accepted.isoformat(),
                result,
                rng.choice(STAFF),
                started,
            ]
        )
    write_csv(out / "资产业务_01_验收单_2024.csv", rows, "utf-8")


def transfers(assets: list[ledger.Asset], rng: random.Random, out: Path) -> None:
    rows = [
        [
            "调拨单号",
            "调拨日期",
            "资产编号",
            "资产名称",
            "调出科室",
            "调入科室",
            "原存放地点",
            "存放地点",
            "调拨原因",
        ]
    ]
    # The monitor the re-exported ledger shows in the ICU: its transfer document.
    moved = next(a for a in assets if a.card == "ZC-2015-00021")
    picks = [moved, *rng.sample([a for a in assets if a.status in ("在用", "闲置") and a is not moved], 14)]
    number, when = 0, date(2024, 6, 1)
    for n, a in enumerate(picks):
        if n == 0:
            target, place, when = "重症医学科(ICU)", "住院部5楼ICU抢救间", date(2024, 6, 20)
        else:
            target = rng.choice([d for d in ledger.DEPARTMENTS if d not in {a.dept, "康复医学科"}])
            place = rng.choice(ledger.DEPARTMENTS[target][1])
            day = date(2024, 6, 1) + timedelta(days=rng.randrange(0, 28))
            when = when if n % 3 == 2 else day  # every third line shares the document before it
        if n % 3 != 2:
            number += 1
        reason = rng.choice(("科室调剂", "支援抢救", "设备周转", "新科室开设"))
        day = "2024-06-31" if n == 6 else when.isoformat()  # deliberately bad: 31 June does not exist
        rows.append(
            [f"DB2024-06-{number:03d}", day, a.card, a.name, a.dept, target, a.location, place, reason]
        )
    write_csv(out / "资产业务_02_调拨单_2024.csv", rows, "gbk")


def certificates(assets: list[ledger.Asset], rng: random.Random, out: Path) -> list[str]:
    rows = [
        [
            "证书编号",
            "资产编号",
            "资产名称",
            "规格型号",
            "出厂编号",
            "检定日期",
            "有效期至",
            "结论",
            "检定机构",
        ]
    ]
    chosen = rng.sample([a for a in assets if a.name in METROLOGY and a.status != "报废"], 60)
    notes = []
    for n, a in enumerate(chosen, start=1):
        if n <= 4:  # expired before the export day
            day = date(2023, 6, 1) + timedelta(days=n * 5)
        elif n <= 9:  # expiring within 30 days of it
            day = date(2023, 7, 1) + timedelta(days=(n - 4) * 5)
        else:
            day = date(2023, 8, 1) + timedelta(days=rng.randrange(0, 320))
        valid = day.replace(year=day.year + 1, day=min(day.day, 28)) - timedelta(days=1)
        result = "合格"
        if n in (12, 27, 44):
            result = "限用"
        elif n == 33:
            result = "不合格"
        card = "" if n == 50 else a.card  # deliberately bad: the card number is missing
        rows.append(
            [
                f"JD{day:%Y}-{n:05d}",
                card,
                a.name,
                a.model,
                a.serial,
                day.isoformat(),
                valid.isoformat(),
                result,
                rng.choice(PROVIDERS),
            ]
        )
        if valid < ledger.EXPORT_DAY:
            notes.append(f"expired: {a.card} {valid}")
        elif valid < ledger.EXPORT_DAY + timedelta(days=30):
            notes.append(f"expiring: {a.card} {valid}")
    write_csv(out / "资产业务_03_计量证书_2024.csv", rows, "utf-8-sig")
    return notes


def contracts(assets: list[ledger.Asset], rng: random.Random, out: Path) -> None:
    rows = [["合同编号", "资产编号", "资产名称", "类型", "供应商", "起止日期", "金额", "签订日期"]]
    serviced = [a for a in assets if a.name in SERVICED and a.status != "报废"]
    makers = sorted({a.maker for a in serviced})
    for n, maker in enumerate(makers, start=1):
        covered = sorted((a for a in serviced if a.maker == maker), key=lambda a: a.card)[:6]
        newest = max(a.acquired for a in covered)
        kind = "原厂保修" if newest >= date(2023, 1, 1) else rng.choice(("维保", "全保"))
        start = date(2024, 1, 1) if kind != "原厂保修" else newest
        end = date(start.year + (3 if kind == "原厂保修" else 1), start.month, 1) - timedelta(days=1)
        amount = Decimal(0) if kind == "原厂保修" else sum(a.value for a in covered) * Decimal("0.06")
        signed = date(2023, 12, rng.randrange(5, 28)) if kind != "原厂保修" else start
        rows.extend(
            [
                f"HT-2024-{n:03d}",
                a.card,
                a.name,
                kind,
                f"{maker}授权服务商",
                f"{start}至{end}",
                ledger.money(amount.quantize(Decimal("0.01"))),
                signed.isoformat(),
            ]
            for a in covered
        )
    write_csv(out / "资产业务_04_维保合同_2024.csv", rows, "utf-8")


def depreciation_run(assets: list[ledger.Asset], out: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "折旧明细"
    sheet.append([f"{ledger.HOSPITAL}固定资产折旧明细表（2024年6月）"])
    sheet.append(
        ["期间", "资产编号", "资产名称", "使用科室", "原值", "本月折旧", "累计折旧", "净值", "折旧方法"]
    )
    for a in assets:
        if a.status == "报废":
            continue
        accumulated = ledger.depreciation(a, ledger.EXPORT_DAY)
        previous = ledger.depreciation(a, date(2024, 5, 31))
        sheet.append(
            [
                "2024-06",
                a.card,
                a.name,
                a.dept,
                float(a.value),
                float(accumulated - previous),
                float(accumulated),
                float(a.value - accumulated),
                "年限平均法",
            ]
        )
    fixed = datetime(2024, 7, 1, 9, 0, 0)  # noqa: DTZ001 - document metadata, fixed for stable bytes
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    buffer = io.BytesIO()
    workbook.save(buffer)
    (out / "资产业务_05_折旧明细_2024-06.xlsx").write_bytes(ledger._stable_zip(buffer.getvalue(), fixed))


def disposals(assets: list[ledger.Asset], rng: random.Random, out: Path) -> None:
    rows = [["报废单号", "资产编号", "资产名称", "使用科室", "报废日期", "报废原因", "处置方式"]]
    scrapped = sorted((a for a in assets if a.status == "报废"), key=lambda a: a.card)[:8]
    for n, a in enumerate(scrapped, start=1):
        when = date(2024, 1, 10) + timedelta(days=rng.randrange(0, 160))
        reason = rng.choice(("超过使用年限，维修成本过高", "主板损坏，无配件", "技术淘汰"))
        rows.append(
            [
                f"BF2024-{n:03d}",
                a.card,
                a.name,
                a.dept,
                when.isoformat(),
                reason,
                rng.choice(("回收", "拍卖", "拆解报废")),
            ]
        )
    write_csv(out / "资产业务_06_报废处置单_2024.csv", rows, "gbk")


def main(out: Path = OUT) -> None:
    rng = random.Random(SEED)
    out.mkdir(exist_ok=True)
    assets = ledger_assets()
    acceptance(assets, rng, out)
    transfers(assets, rng, out)
    notes = certificates(assets, rng, out)
    contracts(assets, rng, out)
    depreciation_run(assets, out)
    disposals(assets, rng, out)
    for note in notes:
        print(note)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
