# ruff: noqa: INP001 - a standalone script
"""Writes the sample XLSX of the README's "Writing a site mapping" guide (synthetic data).

    python examples/generate_mappings.py

设备台账_两行表头.xlsx: a title row, then a two-row header as Excel merges it: 资产编号, 设备名称,
使用科室, 在用状态 and 供应商联系人 merged down across both header rows, 财务信息 merged across
资产原值 and 经费来源. The other samples of the guide are text files written by hand.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent / "mappings"
TITLE = "XX市人民医院设备台账(2024年6月)"
TOP = ["资产编号", "设备名称", "使用科室", "在用状态", "财务信息", None, "供应商联系人"]
SUB = [None, None, None, None, "资产原值", "经费来源", None]
ROWS = [
    ["ZC2019007", "呼吸机", "重症医学科", "在用", 268000, "财政拨款", "张工 138****0101"],
    ["ZC2020015", "监护仪", "急诊科", "维修", 35800, "自筹", ""],
    ["ZC2021033", "输液泵", "重症医学科", "闲置", 12800.5, "", "李工 139****0202"],
]


def ledger() -> openpyxl.Workbook:
    book = openpyxl.Workbook()
    sheet = book.active
    if sheet is None:
        raise RuntimeError("openpyxl made a workbook without a sheet")
    sheet.title = "设备台账"
    sheet.append([TITLE])
    sheet.append(TOP)
    sheet.append(SUB)
    for row in ROWS:
        sheet.append(row)
    sheet.merge_cells("A1:G1")
    for column in "ABCDG":  # titles merged down across both header rows
        sheet.merge_cells(f"{column}2:{column}3")
    sheet.merge_cells("E2:F2")  # the group cell over its two sub-titles
    return book


if __name__ == "__main__":
    book = ledger()
    book.properties.created = book.properties.modified = datetime(2024, 7, 1)  # noqa: DTZ001
    book.save(HERE / "设备台账_两行表头.xlsx")
