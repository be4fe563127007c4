"""Field accounting and header layouts of the tabular adapters (HRP, SPD).

Every non-empty cell of a data row is claimed by a mapped field, declared ignored by the mapping,
or reported as unclaimed; the header may be one row or several (merged group cells over
sub-titles, titles merged down across the header rows), below a title block, in XLSX or CSV.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters._files.sheet import read_sheet
from adapters.hrp import ADAPTER as HRP
from adapters.hrp.mapping import default_mapping as hrp_mapping
from adapters.hrp.mapping import load_hrp_mapping
from adapters.spd import ADAPTER as SPD
from adapters.spd.mapping import default_mapping as spd_mapping
from hub.cli import app
from hub.translation.safe import run_translator
from tests.unit.adapters import _hrp, _spd

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adapters.base import Translation

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# The canonical ledger of the layout tests: field -> the synonyms a site may use for it.
FIELDS: dict[str, tuple[str, ...]] = {
    "card_no": ("资产编号", "卡片编号", "固定资产编号"),
    "name": ("资产名称", "设备名称"),
    "department": ("使用科室", "使用部门"),
    "acquired_on": ("购置日期", "入账日期"),
    "original_value": ("原值", "资产原值"),
    "status": ("资产状态", "使用状态"),
    "funding_source": ("资金来源", "经费来源"),
}
ROWS = [
    ("ZC-001", "呼吸机", "重症医学科(ICU)", "2019-03-01", "268000.00", "在用", "财政拨款"),
    ("ZC-002", "监护仪", "急诊科", "2020-07-15", "35800.00", "维修", "自筹"),
    ("ZC-003", "输液泵", "ICU", "2021-11-30", "12800.00", "闲置", ""),
]
GROUP = "财务信息"  # a merged group cell over the money columns of a two-row header


def hrp_run(payload: bytes, filename: str, mapping: object | None = None) -> Translation:
    mapping = mapping or hrp_mapping()
    # As the worker runs it: a file the translator refuses whole is one message-level failure.
    return run_translator(HRP, _hrp.raw_record(filename), payload, mapping, _hrp.context(mapping))  # type: ignore[arg-type]


def canonical(translation: Translation) -> list[tuple[str, str, str]]:
    """The events without what depends on where in the file they came from (ids, lines)."""
    return sorted(
        (
            e.event.type,
            e.event.subject,
            json.dumps(e.event.model_dump(mode="json")["payload"], sort_keys=True),
        )
        for e in translation.events
    )


def header_rows(titles: Sequence[str], fields: Sequence[str], *, two_rows: bool) -> list[list[str]]:
    """One header row, or two: the money columns under a group cell, the others merged down."""
    if not two_rows:
        return [list(titles)]
    top: list[str] = []
    bottom: list[str] = []
    grouped = False
    for title, field in zip(titles, fields, strict=True):
        if field in ("original_value", "funding_source"):
            top.append("" if grouped else GROUP)  # a merged cell keeps its text in its first cell
            bottom.append(title)
            grouped = True
        else:
            top.append(title)  # merged down: the cell below reads empty
            bottom.append("")
            grouped = False
    return [top, bottom]


def export(
    order: Sequence[int],
    names: Sequence[int],
    *,
    titles_above: int,
    two_rows: bool,
    fmt: str,
    extra: tuple[str, list[str]] | None = None,
) -> bytes:
    fields = [list(FIELDS)[i] for i in order]
    titles = [FIELDS[f][names[i] % len(FIELDS[f])] for f, i in zip(fields, order, strict=True)]
    rows: list[list[str]] = [["XX市人民医院固定资产台账"] for _ in range(titles_above)]
    head = header_rows(titles, fields, two_rows=two_rows)
    data = [[row[i] for i in order] for row in ROWS]
    if extra is not None:
        head = [[*r, extra[0] if n == 0 else ""] for n, r in enumerate(head)]
        data = [[*r, extra[1][k]] for k, r in enumerate(data)]
    rows += head + data
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        return out.getvalue().encode("utf-8")
    return xlsx(rows, fields, titles_above=titles_above, two_rows=two_rows)


def xlsx(rows: list[list[str]], fields: Sequence[str], *, titles_above: int, two_rows: bool) -> bytes:
    """`rows` as a workbook; a two-row header merged as Excel does: the group cell across its
    columns, the other titles down both rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    if two_rows:
        top = titles_above + 1
        cols = [i + 1 for i, f in enumerate(fields) if f in ("original_value", "funding_source")]
        runs: list[list[int]] = []
        for c in cols:
            if runs and runs[-1][-1] == c - 1:
                runs[-1].append(c)
            else:
                runs.append([c])
        for run_ in runs:
            if len(run_) > 1:
                sheet.merge_cells(start_row=top, start_column=run_[0], end_row=top, end_column=run_[-1])
        for c in range(1, len(fields) + 1):
            if c not in cols:
                sheet.merge_cells(start_row=top, start_column=c, end_row=top + 1, end_column=c)
    out_bytes = io.BytesIO()
    book.save(out_bytes)
    return out_bytes.getvalue()


BASELINE = export(range(len(FIELDS)), [0] * len(FIELDS), titles_above=0, two_rows=False, fmt="csv")


class TestHeaderLayouts:
    def test_baseline_translates_every_row_with_its_status(self) -> None:
        result = hrp_run(BASELINE, "ledger.csv")
        assert result.failures == ()
        statuses = [e.event.model_dump(mode="json")["payload"]["details"]["status"] for e in result.events]
        assert statuses == ["in_use", "under_repair", "idle"]

    @pytest.mark.parametrize("fmt", ["xlsx", "csv"])
    def test_two_row_header_keeps_the_vertically_merged_columns(self, fmt: str) -> None:
        """The reported loss: status and the other titles merged down both header rows came out null."""
        payload = export(range(len(FIELDS)), [0] * len(FIELDS), titles_above=2, two_rows=True, fmt=fmt)
        result = hrp_run(payload, f"ledger.{fmt}")
        assert result.failures == ()
        assert canonical(result) == canonical(hrp_run(BASELINE, "ledger.csv"))
        header = read_sheet(payload, filename=f"ledger.{fmt}", mapping=hrp_mapping()).header
        assert header.lines == (3, 4)
        assert "2 header rows" in header.reason
        assert "2 title row(s) above" in header.reason
        assert header.title_of("original_value") == f"{GROUP} / 原值"
        assert header.matched["original_value"] == "原值"
        assert header.title_of("status") == "资产状态"

    def test_a_two_row_header_printed_again_on_each_page_is_skipped(self) -> None:
        one_page = export(range(len(FIELDS)), [0] * len(FIELDS), titles_above=0, two_rows=True, fmt="csv")
        lines = one_page.decode().split("\r\n")
        two_pages = "\r\n".join([*lines[:3], *lines[:2], *lines[3:]]).encode()
        result = hrp_run(two_pages, "ledger.csv")
        assert result.failures == ()
        assert canonical(result) == canonical(hrp_run(BASELINE, "ledger.csv"))
        assert result.skipped == ("line:4: repeated header row", "line:5: repeated header row")

    def test_three_header_rows_nested_groups(self) -> None:
        """A group over groups over titles, and a title merged down all three rows."""
        rows = [
            ["资产台账", "", "", "", "资产状态"],
            ["基本信息", "", "财务信息", "", ""],
            ["资产编号", "资产名称", "原值", "资金来源", ""],
            ["ZC-001", "呼吸机", "1.00", "自筹", "在用"],
        ]
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        header = read_sheet(out.getvalue().encode(), filename="l.csv", mapping=hrp_mapping()).header
        assert header.lines == (1, 2, 3)
        assert header.title_of("original_value") == "资产台账 / 财务信息 / 原值"
        assert header.title_of("status") == "资产状态"
        result = hrp_run(out.getvalue().encode(), "l.csv")
        assert result.failures == ()
        [event] = result.events
        assert event.event.model_dump(mode="json")["payload"]["details"]["status"] == "in_use"

    def test_a_group_row_of_only_group_cells_is_a_title_not_a_header_row(self) -> None:
        """Row 1 names no field: the one-row header below it is taken, groups or not."""
        rows = [
            ["基本信息", "", "", "财务信息", ""],
            ["资产编号", "资产名称", "资产状态", "原值", "资金来源"],
        ]
        rows.append(["ZC-001", "呼吸机", "在用", "1.00", "自筹"])
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        header = read_sheet(out.getvalue().encode(), filename="l.csv", mapping=hrp_mapping()).header
        assert header.lines == (2,)
        assert header.columns["status"] == 2

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        order=st.permutations(range(len(FIELDS))),
        names=st.lists(st.integers(0, 2), min_size=len(FIELDS), max_size=len(FIELDS)),
        titles_above=st.integers(0, 4),
        two_rows=st.booleans(),
        fmt=st.sampled_from(["csv", "xlsx"]),
    )
    def test_same_events_whatever_the_layout(
        self, order: list[int], names: list[int], titles_above: int, two_rows: bool, fmt: str
    ) -> None:
        """Columns shuffled, synonyms swapped, the header moved down or split over two rows with
        merged cells, CSV or XLSX: the same events, every cell accounted for."""
        payload = export(order, names, titles_above=titles_above, two_rows=two_rows, fmt=fmt)
        result = hrp_run(payload, f"ledger.{fmt}")
        assert result.failures == ()
        assert canonical(result) == canonical(hrp_run(BASELINE, "ledger.csv"))
        assert result.accounting is not None
        assert result.accounting.unclaimed == {}
        filled = sum(1 for row in ROWS for cell in row if cell)
        assert sum(result.accounting.claimed.values()) == filled


class TestAccounting:
    def test_an_extra_vendor_column_is_unclaimed_with_samples_and_events_unchanged(self) -> None:
        payload = export(
            range(len(FIELDS)),
            [0] * len(FIELDS),
            titles_above=1,
            two_rows=True,
            fmt="xlsx",
            extra=("供应商联系人", ["张三 138", "", "李四 139"]),
        )
        result = hrp_run(payload, "ledger.xlsx")
        assert result.failures == ()
        assert canonical(result) == canonical(hrp_run(BASELINE, "ledger.csv"))
        assert result.accounting is not None
        assert result.accounting.unclaimed == {"供应商联系人": 2}
        assert result.accounting.samples["供应商联系人"] == ("张三 138", "李四 139")
        assert result.accounting.rows == 3
        assert result.accounting.fields["funding_source"] == 2
        # Stored form: counts only, no cell value.
        assert "张三" not in json.dumps(result.accounting.summary(), ensure_ascii=False)

    def test_ignore_list_declares_the_column(self, tmp_path: Path) -> None:
        site = tmp_path / "hrp.yaml"
        site.write_text("extends: default\nignore: [序号, 本月折旧, 供应商联系人]\n", encoding="utf-8")
        payload = export(
            range(len(FIELDS)), [0] * len(FIELDS), titles_above=0, two_rows=False, fmt="csv",
            extra=("供应商联系人", ["a", "b", ""]),
        )  # fmt: skip
        result = hrp_run(payload, "ledger.csv", load_hrp_mapping(site))
        assert result.accounting is not None
        assert result.accounting.unclaimed == {}
        assert result.accounting.ignored == {"供应商联系人": 2}

    def test_unclaimed_error_refuses_the_whole_file_naming_the_column(self, tmp_path: Path) -> None:
        site = tmp_path / "hrp.yaml"
        site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
        payload = export(
            range(len(FIELDS)), [0] * len(FIELDS), titles_above=0, two_rows=False, fmt="csv",
            extra=("供应商联系人", ["a", "b", ""]),
        )  # fmt: skip
        result = hrp_run(payload, "ledger.csv", load_hrp_mapping(site))
        assert result.events == ()
        [failure] = result.failures
        assert failure.position == "message"
        assert "供应商联系人" in failure.reason
        assert "unclaimed: error" in failure.reason
        # The same file without the extra column is fine under the same mapping.
        assert hrp_run(BASELINE, "ledger.csv", load_hrp_mapping(site)).failures == ()

    def test_unclaimed_error_fails_a_row_with_a_value_under_no_titled_column(self, tmp_path: Path) -> None:
        site = tmp_path / "hrp.yaml"
        site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
        payload = BASELINE.replace(b"\xe8\x87\xaa\xe7\xad\xb9\r\n", "自筹,附注\r\n".encode(), 1)
        result = hrp_run(payload, "ledger.csv", load_hrp_mapping(site))
        assert [f.code for f in result.failures] == ["unclaimed_column"]
        assert "(column 8)" in result.failures[0].reason
        assert len(result.events) == 2

    def test_an_ignored_column_that_is_also_a_synonym_is_a_mapping_problem(self, tmp_path: Path) -> None:
        site = tmp_path / "hrp.yaml"
        site.write_text("extends: default\nignore: [资产状态]\n", encoding="utf-8")
        with pytest.raises(Exception, match="also a synonym of 'status'"):
            load_hrp_mapping(site)

    def test_chunks_add_up_to_the_whole(self) -> None:
        mapping = spd_mapping()
        payload = _spd.RECEIPTS.read_bytes()
        raw = _spd.raw_record(_spd.RECEIPTS.name)
        whole = SPD.translate(raw, payload, mapping, _spd.context(mapping))
        assert SPD.translate_chunks is not None
        chunks = list(SPD.translate_chunks(raw, payload, mapping, _spd.context(mapping), 50))
        assert len(chunks) > 2
        total = chunks[0].accounting
        assert total is not None
        for chunk in chunks[1:]:
            total = total.merged(chunk.accounting)
        assert whole.accounting is not None
        assert total.summary() == whole.accounting.summary()
        assert total.fields == whole.accounting.fields


def _non_empty_data_cells(path: Path, mapping: object) -> int:
    sheet = read_sheet(path.read_bytes(), filename=path.name, mapping=mapping)  # type: ignore[arg-type]
    return sum(1 for r in sheet.records if r.kind == "data" for v in r.values.values() if v.strip())


CORPUS = [
    *(("hrp", p) for p in sorted((EXAMPLES / "hrp").iterdir()) if p.suffix in (".csv", ".xlsx")),
    *(("spd", p) for p in sorted((EXAMPLES / "spd").iterdir()) if p.suffix in (".csv", ".xlsx")),
]


@pytest.mark.parametrize(("system", "path"), CORPUS, ids=[p.name for _, p in CORPUS])
def test_every_non_empty_cell_of_the_bundled_examples_is_claimed_or_ignored(system: str, path: Path) -> None:
    """The corpus walk: 100 % of the non-empty data cells of every bundled example are accounted."""
    adapter, mapping, helpers = (HRP, hrp_mapping(), _hrp) if system == "hrp" else (SPD, spd_mapping(), _spd)
    result = adapter.translate(
        helpers.raw_record(path.name), path.read_bytes(), mapping, helpers.context(mapping)
    )
    accounting = result.accounting
    assert accounting is not None
    assert accounting.unclaimed == {}, f"{path.name}: unclaimed {accounting.unclaimed}"
    # Counted independently of the tally: every non-empty cell of every data row.
    assert accounting.cells == _non_empty_data_cells(path, mapping)
    assert sum(accounting.claimed.values()) + sum(accounting.ignored.values()) == accounting.cells


class TestMappingCheck:
    @staticmethod
    def _vendor_export(tmp_path: Path) -> Path:
        path = tmp_path / "台账_新版.xlsx"
        path.write_bytes(
            export(
                range(len(FIELDS)),
                [1] * len(FIELDS),
                titles_above=1,
                two_rows=True,
                fmt="xlsx",
                extra=("供应商联系人", ["张三 138", "", "李四 139"]),
            )
        )
        return path

    def test_prints_the_header_the_columns_and_the_unclaimed_column_with_samples(
        self, tmp_path: Path
    ) -> None:
        path = self._vendor_export(tmp_path)
        result = CliRunner().invoke(
            app,
            ["mapping", "check", "hrp", str(path), "--data-dir", str(tmp_path / "hub")],
            terminal_width=240,
        )
        assert result.exit_code == 0, result.output
        out = result.output
        assert "lines 2-3: 2 header rows" in out
        assert "财务信息 / 资产原值" in out  # column -> field, with the synonym that matched
        assert "original_value" in out
        assert "供应商联系人" in out
        assert "2/3 (67%)" in out
        assert "张三 138, 李四 139" in out
        assert "unclaimed 2" in out

    def test_with_unclaimed_error_the_dry_run_fails(self, tmp_path: Path) -> None:
        path = self._vendor_export(tmp_path)
        site = tmp_path / "hrp.yaml"
        site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
        result = CliRunner().invoke(
            app,
            [
                "mapping",
                "check",
                "hrp",
                str(path),
                "--mapping",
                str(site),
                "--data-dir",
                str(tmp_path / "hub"),
            ],
            terminal_width=240,
        )
        assert result.exit_code == 1
        assert "供应商联系人" in result.output
