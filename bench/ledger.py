"""An N-row HRP fixed-asset ledger (GBK CSV, as hospitals export it), made by examples/generate_hrp.py."""

from __future__ import annotations

import csv
import importlib.util
import io
import random
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

GENERATOR = Path(__file__).resolve().parents[1] / "examples" / "generate_hrp.py"
HEADER_LINES = 3  # title, export date, column names
EXPORT_DAY = date(2024, 6, 30)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate_hrp", GENERATOR)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_ledger(path: Path, rows: int, seed: int = 20240630) -> Path:
    """`rows` valid asset rows (cards unique) with the sample's title rows and totals line."""
    gen = _generator()
    assets = gen.make_assets(random.Random(seed), rows, "ZC")
    lines, totals = gen.ledger_rows(assets, EXPORT_DAY)
    title = [[f"{gen.HOSPITAL}固定资产台账"], [f"导出日期：{EXPORT_DAY.isoformat()}"]]
    gen.write_csv(path, title, lines, totals, "gbk")
    return path


def csv_sqlite_ceiling(path: Path, db: Path, batch: int = 1_000) -> int:
    """The ceiling: decode + `csv` + SQLite (WAL, synchronous=FULL) batched insert of the same rows."""
    text = path.read_bytes().decode("gbk")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        reader = csv.reader(io.StringIO(text))
        for _ in range(HEADER_LINES):
            header = next(reader)
        columns = len(header)
        conn.execute(
            f"CREATE TABLE ledger (card TEXT PRIMARY KEY, {', '.join(f'c{i} TEXT' for i in range(columns))})"
        )
        insert = f"INSERT INTO ledger VALUES (?, {', '.join('?' * columns)})"
        count, chunk = 0, []
        for row in reader:
            if row[0] == "合计":
                continue
            chunk.append((row[1], *row, *[""] * (columns - len(row))))
            if len(chunk) == batch:
                count += _commit(conn, insert, chunk)
                chunk = []
        count += _commit(conn, insert, chunk)
    finally:
        conn.close()
    return count


def _commit(conn: sqlite3.Connection, insert: str, chunk: list[tuple[str, ...]]) -> int:
    conn.execute("BEGIN")
    conn.executemany(insert, chunk)
    conn.execute("COMMIT")  # one durable transaction per batch, as the hub commits per batch
    return len(chunk)


def timed(work, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - started
