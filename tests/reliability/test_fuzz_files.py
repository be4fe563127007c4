"""Fuzzing the tabular readers (CSV/XLSX) and the HRP/SPD translators on mutated bundled exports.

CSV seeds are the examples re-encoded as GBK, GB18030, UTF-8 with BOM, UTF-16 and Big5 (the last
one is not an encoding the hub promises to read: it must be refused or read as something, never
crash), then byte-mutated. XLSX seeds are mutated inside the zip (one sheet or string part), so
openpyxl gets past the zip layer and meets broken XML. Only MalformedMessage may escape; every
row Failure names its file and line.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from adapters._files.tabular import read_grid
from adapters.errors import MalformedMessage
from tests.reliability.fuzzing import (
    BUDGETS,
    EXAMPLES,
    assert_failures_located,
    fuzz,
    mutated,
    mutated_xlsx,
    translate_or_refuse,
)

ENCODINGS = ("gbk", "gb18030", "utf-8-sig", "utf-16", "big5", "utf-8")
CSV_FILES = sorted((EXAMPLES / "hrp").glob("*.csv")) + sorted((EXAMPLES / "spd").glob("*.csv"))
XLSX_FILES = sorted((EXAMPLES / "hrp").glob("*.xlsx")) + sorted((EXAMPLES / "spd").glob("*.xlsx"))


def _text(path) -> str:
    data = path.read_bytes()
    for codec in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    raise AssertionError(path)


CSV_SEEDS = [(p.parent.name, p.name, _text(p)) for p in CSV_FILES]
XLSX_SEEDS = [(p.parent.name, p.name, p.read_bytes()) for p in XLSX_FILES]


@st.composite
def encoded_csv(draw: st.DrawFn) -> tuple[str, str, bytes]:
    system, name, text = draw(st.sampled_from(CSV_SEEDS))
    codec = draw(st.sampled_from(ENCODINGS))
    seed = text.encode(codec, errors="replace")
    return system, name, draw(mutated(st.just(seed)))


@st.composite
def broken_xlsx(draw: st.DrawFn) -> tuple[str, str, bytes]:
    system, name, data = draw(st.sampled_from(XLSX_SEEDS))
    return system, name, draw(mutated_xlsx([data]))


def test_the_seeds_are_there() -> None:
    assert len(CSV_FILES) >= 10
    assert len(XLSX_FILES) >= 2


def _grid(case: tuple[str, str, bytes]) -> None:
    _, name, data = case
    try:
        grid = read_grid(data, filename=name)
    except MalformedMessage as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert name in refusal
        return
    lines = [line for line, _ in grid.rows]
    assert lines == sorted(lines)


def _translate(case: tuple[str, str, bytes]) -> None:
    system, name, data = case
    outcome = translate_or_refuse(system, data, name)
    if isinstance(outcome, MalformedMessage):
        assert name in str(outcome)  # a refusal names the file
    assert_failures_located(outcome, needs_line=True)


@pytest.mark.parametrize("budget", BUDGETS)
def test_csv_in_any_encoding_mutated_reads_or_refuses(budget: int) -> None:
    fuzz(budget, encoded_csv(), _grid)


@pytest.mark.parametrize("budget", BUDGETS)
def test_csv_translation_is_contained(budget: int) -> None:
    fuzz(budget, encoded_csv(), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_xlsx_with_broken_parts_reads_or_refuses(budget: int) -> None:
    fuzz(budget, broken_xlsx(), _grid)


@pytest.mark.parametrize("budget", BUDGETS)
def test_xlsx_translation_is_contained(budget: int) -> None:
    fuzz(budget, broken_xlsx(), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_xlsx_bytes_mutated_reads_or_refuses(budget: int) -> None:
    """Byte edits on the zip itself (headers, directory, compressed data)."""
    fuzz(
        budget,
        mutated(st.sampled_from([d for _, _, d in XLSX_SEEDS])).map(lambda d: ("spd", "x.xlsx", d)),
        _grid,
    )
