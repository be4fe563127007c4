"""A synthetic HRP ledger of any size, as a hospital's export would look (GBK, Chinese headers)."""

from __future__ import annotations

import random
from pathlib import Path

HEADER = [
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
]
DEVICES = [
    ("呼吸机", "SV300", "迈瑞"),
    ("输液泵", "BeneFusion VP5", "迈瑞"),
    ("监护仪", "IntelliVue MX450", "飞利浦"),
    ("除颤仪", "BeneHeart D6", "迈瑞"),
    ("麻醉机", "Perseus A500", "德尔格"),
    ("血液透析机", "4008S", "费森尤斯"),
]
DEPTS = ["重症医学科", "急诊科", "麻醉科", "心血管内科", "呼吸与危重症医学科", "手术室", "儿科", "新生儿科"]
STATUSES = ["在用", "在用", "在用", "闲置", "维修"]


def write_ledger(path: Path, rows: int, *, seed: int = 7, encoding: str = "gbk") -> None:
    rnd = random.Random(seed)
    lines = ["某某市第一人民医院固定资产台账", ",".join(HEADER)]
    for i in range(rows):
        name, model, maker = rnd.choice(DEVICES)
        cost = rnd.randint(2000, 900000)
        dep = rnd.randint(0, cost)
        lines.append(
            ",".join(
                [
                    f"ZC-{i:07d}",
                    name,
                    model,
                    maker,
                    f"SN{rnd.randint(10**7, 10**8)}",
                    rnd.choice(DEPTS),
                    f"{rnd.randint(1, 20)}号楼{rnd.randint(1, 30)}层",
                    f"20{rnd.randint(10, 24)}-{rnd.randint(1, 12)}-{rnd.randint(1, 28)}",
                    f'"{cost:,}.00"',
                    f"{dep}.00",
                    f"{cost - dep}.00",
                    rnd.choice(STATUSES),
                ]
            )
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
