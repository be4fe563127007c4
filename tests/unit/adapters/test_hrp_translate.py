"""HRP ledger translation: the sample exports, event fields, row failures, determinism."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from adapters.errors import MalformedMessage
from adapters.hrp import ADAPTER
from adapters.hrp.mapping import default_mapping, load_hrp_mapping
from schemas._base import DeptRef, Identifier, Money, SourceSystem
from schemas.assets import AssetRegistered, AssetStatus
from schemas.ids import asset_id_for, event_id_for
from tests.unit.adapters._hrp import (
    LEDGER,
    LEDGER_BOM,
    LEDGER_UPDATE,
    MAPPING_FIX,
    RECEIVED,
    SUPPLEMENT,
    ledger_csv,
    run,
)

if TYPE_CHECKING:
    from pathlib import Path

GOOD = 'ZC-2019-00001,呼吸机,SV300,迈瑞,FW19000001,重症医学科(ICU),ICU 3床,2019年3月5日,"￥233,000.00",在用,'


def registered(translation) -> list[AssetRegistered]:
    events = [e.event for e in translation.events]
    assert all(isinstance(e, AssetRegistered) for e in events)
    return events  # type: ignore[return-value]


class TestSampleLedger:
    def test_counts(self) -> None:
        """The GBK sample ledger gives 524 events, 6 failures and its 合计 row skipped."""
        result = run(LEDGER.read_bytes(), LEDGER.name)
        assert (len(result.events), len(result.failures), result.skipped) == (
            524,
            6,
            ("line:534: summary row",),
        )
        assert result.units == 531

    def test_failures_name_file_line_column_and_code(self) -> None:
        """Each deliberately bad row fails at its documented line, column and code."""
        result = run(LEDGER.read_bytes(), LEDGER.name)
        got = [(f.location.file, f.location.line, f.location.column, f.code) for f in result.failures]
        assert got == [
            (LEDGER.name, 41, "购置日期", "invalid_date"),
            (LEDGER.name, 125, "购置日期", "invalid_date"),
            (LEDGER.name, 264, "购置日期", "invalid_date"),
            (LEDGER.name, 309, "原值", "invalid_amount"),
            (LEDGER.name, 392, "资产编号", "missing_required"),
            (LEDGER.name, 456, "资产编号", "duplicate_key"),
        ]
        assert [f.position for f in result.failures] == [f"line:{f.location.line}" for f in result.failures]

    def test_duplicate_names_the_earlier_line(self) -> None:
        """The later of two rows with one card number fails, naming the line of the first."""
        failure = run(LEDGER.read_bytes(), LEDGER.name).failures[-1]
        assert failure.reason == "资产编号 'ZC-2016-00039' repeats the one on line 205"

    def test_failure_excerpt_is_the_row(self) -> None:
        """A failure carries the row's cells under the file's own column titles."""
        failure = run(LEDGER.read_bytes(), LEDGER.name).failures[3]
        assert failure.excerpt is not None
        assert failure.excerpt["原值"] == "待定"
        assert failure.excerpt["资产编号"] == "ZC-2019-00008"

    def test_mapping_fix_lands_the_day_first_rows(self) -> None:
        """With the site mapping's %d.%m.%Y format, two of the six bad rows land."""
        result = run(LEDGER.read_bytes(), LEDGER.name, load_hrp_mapping(MAPPING_FIX))
        assert (len(result.events), len(result.failures)) == (526, 4)
        landed = {e.location.line: e.event for e in result.events}
        assert landed[125].payload.details.acquired_on == date(2014, 5, 10)  # type: ignore[attr-defined]

    def test_supplementary_xlsx(self) -> None:
        """The XLSX supplement (other synonyms, a title row, date cells) gives 60 events and no failure."""
        result = run(SUPPLEMENT.read_bytes(), SUPPLEMENT.name)
        assert (len(result.events), len(result.failures), result.skipped) == (60, 0, ())
        first = registered(result)[0]
        assert result.events[0].location.line == 3
        assert first.payload.details.acquired_on is not None
        assert first.payload.details.original_value is not None
        assert (
            first.payload.details.original_value.amount
            == first.payload.details.original_value.amount.normalize()
        )

    def test_bom_variant(self) -> None:
        """The UTF-8-with-BOM sample gives 20 events and its summary row skipped."""
        result = run(LEDGER_BOM.read_bytes(), LEDGER_BOM.name)
        assert (len(result.events), len(result.failures), len(result.skipped)) == (20, 0, 1)

    def test_reexport_changes_exactly_three_assets(self) -> None:
        """The re-exported ledger differs from the first in the details of exactly three assets."""
        before = {e.subject: e.payload for e in registered(run(LEDGER.read_bytes(), LEDGER.name))}
        after = {
            e.subject: e.payload for e in registered(run(LEDGER_UPDATE.read_bytes(), LEDGER_UPDATE.name))
        }
        assert before.keys() == after.keys()
        changed = {s for s in before if before[s] != after[s]}
        assert len(changed) == 3
        fields = {
            name
            for s in changed
            for name in type(before[s].details).model_fields
            if getattr(before[s].details, name) != getattr(after[s].details, name)
        }
        assert fields == {"department", "location", "status", "status_text", "net_value"}

    def test_translation_is_deterministic(self) -> None:
        """Translating the same export twice gives identical events, ids included."""
        first = run(LEDGER.read_bytes(), LEDGER.name)
        second = run(LEDGER.read_bytes(), LEDGER.name)
        assert [e.event.model_dump_json() for e in first.events] == [
            e.event.model_dump_json() for e in second.events
        ]
        assert first.failures == second.failures


class TestEventFields:
    def test_one_good_row(self) -> None:
        """A good row becomes asset.registered with deterministic id, subject, identifiers and details."""
        result = run(ledger_csv(GOOD + "(01)06943421700017(11)190305(21)FW19000001"), "ledger.csv")
        (event,) = registered(result)
        assert event.event_id == event_id_for("hrp", "ledger.csv", "line:4")
        assert event.subject == asset_id_for(Identifier(scheme="hrp.card", value="ZC-2019-00001"))
        assert [(i.scheme, i.value) for i in event.payload.identifiers] == [
            ("hrp.card", "ZC-2019-00001"),
            ("serial", "迈瑞|FW19000001"),
            ("udi", "(01)06943421700017(11)190305(21)FW19000001"),
        ]
        details = event.payload.details
        assert details.department == DeptRef(code="0101", name="重症医学科")
        assert details.original_value == Money(amount=Decimal("233000.00"), currency="CNY")
        assert (details.status, details.status_text) == (AssetStatus.IN_USE, "在用")
        assert event.occurred_at == datetime(2019, 3, 4, 16, 0, tzinfo=UTC)  # midnight in Shanghai
        assert event.recorded_at == RECEIVED
        assert event.source.system == SourceSystem.HRP
        assert (event.source.site, event.source.raw_ref, event.source.adapter_version) == (
            "demo",
            "raw-ledger.csv",
            "hrp/1.0.0",
        )

    def test_no_date_means_received_time(self) -> None:
        """Without an acquisition date, occurred_at falls back to the receive time."""
        (event,) = registered(run(ledger_csv("A-1,监护仪,,,,,,,,,")))
        assert event.occurred_at == RECEIVED
        assert event.payload.identifiers == [Identifier(scheme="hrp.card", value="A-1")]

    def test_full_width_card_number_is_folded(self) -> None:
        """A card number typed in full-width characters keys the same asset as its ASCII form."""
        (event,) = registered(run(ledger_csv("ＺＣ－１,监护仪,,,,,,,,,")))
        assert event.subject == asset_id_for(Identifier(scheme="hrp.card", value="ZC-1"))

    def test_unknown_department_is_kept_by_name(self) -> None:
        """A department missing from the code map lands with its name only by default."""
        (event,) = registered(run(ledger_csv("A-1,监护仪,,,,康复医学科,,,,,")))
        assert event.payload.details.department == DeptRef(name="康复医学科")

    def test_strict_departments_fail_the_row(self, tmp_path: Path) -> None:
        """With strict_departments an unknown department fails its row, naming the value."""
        path = tmp_path / "strict.yaml"
        path.write_text("extends: default\nstrict_departments: true\n", encoding="utf-8")
        result = run(
            ledger_csv("A-1,监护仪,,,,康复医学科,,,,,", "A-2,监护仪,,,,ICU,,,,,"),
            mapping=load_hrp_mapping(path),
        )
        (failure,) = result.failures
        assert (failure.code, failure.location.column, failure.location.line) == (
            "unknown_department",
            "使用科室",
            4,
        )
        assert "'康复医学科' is not in the mapping's departments" in failure.reason
        assert len(result.events) == 1

    def test_unmapped_status_is_unknown_with_text(self) -> None:
        """A status word the mapping lacks becomes unknown, with the ledger's word kept."""
        (event,) = registered(run(ledger_csv("A-1,监护仪,,,,,,,,待报废,")))
        assert (event.payload.details.status, event.payload.details.status_text) == (
            AssetStatus.UNKNOWN,
            "待报废",
        )

    def test_all_problems_of_a_row_are_reported(self) -> None:
        """A row with several bad cells reports them all, located at the first."""
        (failure,) = run(ledger_csv("A-1,监护仪,,,,,,2019-13-01,abc,,")).failures
        assert failure.code == "invalid_date"
        assert "购置日期" in failure.reason
        assert "原值: 'abc' is not a number" in failure.reason

    def test_negative_original_value_fails(self) -> None:
        """A negative 原值 is refused."""
        (failure,) = run(ledger_csv("A-1,监护仪,,,,,,,-5,,")).failures
        assert (failure.code, failure.location.column) == ("invalid_amount", "原值")

    def test_category_code_and_name_are_split(self, tmp_path: Path) -> None:
        """'6854 手术室…' becomes code 6854 with its name; a bare code has no name."""
        text = "资产编号,资产名称,资产分类\nA-1,呼吸机,6854 手术室设备\nA-2,监护仪,6821\nA-3,床,病房设备\n"
        events = registered(run(text.encode()))
        cats = [(e.payload.details.category.code, e.payload.details.category.name) for e in events]  # type: ignore[union-attr]
        assert cats == [("6854", "手术室设备"), ("6821", None), (None, "病房设备")]


class TestWholeFile:
    def test_no_header_is_malformed(self) -> None:
        """A file without a recognisable header raises MalformedMessage naming it."""
        with pytest.raises(MalformedMessage, match=r"x\.csv: no header row"):
            run(b"a,b,c\n1,2,3\n", "x.csv")

    def test_missing_required_column_fails_rows_not_file(self) -> None:
        """A header without the name column still reads; each row fails for its empty name."""
        result = run("资产编号,规格型号,原值\nA-1,SV300,100\n".encode(), "x.csv")
        assert [f.code for f in result.failures] == ["missing_required"]

    def test_undecodable_bytes_are_malformed(self) -> None:
        """Bytes in no supported encoding raise MalformedMessage naming the file."""
        with pytest.raises(MalformedMessage, match=r"bad\.csv: not UTF-8, GBK or GB18030"):
            run(b"abc,\xff\xfd" * 10, "bad.csv")

    def test_adapter_spec(self) -> None:
        """The adapter spec wires the HRP translator, its default mapping and snapshot type."""
        assert ADAPTER.system == SourceSystem.HRP
        assert ADAPTER.version == "hrp/1.0.0"
        assert ADAPTER.snapshot_types == frozenset({"asset.registered"})
        assert ADAPTER.load_mapping(ADAPTER.default_mapping).version == default_mapping().version
