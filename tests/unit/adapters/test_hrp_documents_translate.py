"""HRP asset documents: each kind's fields, recognition beside the ledger, failures and event ids."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from adapters.hrp import ADAPTER
from adapters.hrp.documents import parse_period, parse_term
from adapters.hrp.mapping import default_mapping
from schemas._base import DeptRef, Identifier, LocationRef, Money
from schemas.assets import (
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetRegistered,
    AssetRelocated,
    AssetValuationUpdated,
)
from schemas.ids import asset_id_for, event_id_for
from tests.unit.adapters._hrp import context, raw_record, run

if TYPE_CHECKING:
    from collections.abc import Sequence

ICU = DeptRef(code="0101", name="重症医学科")
EMERGENCY = DeptRef(code="0102", name="急诊科")


def table(header: Sequence[str], *rows: list[str], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def events(data: bytes, filename: str = "doc.csv", message_id: str | None = None) -> list:
    mapping = default_mapping()
    result = ADAPTER.translate(raw_record(filename, message_id=message_id), data, mapping, context(mapping))
    assert not result.failures, [f.reason for f in result.failures]
    return [e.event for e in result.events]


class TestTransfers:
    HEADER = (
        "调拨单号",
        "调拨日期",
        "资产编号",
        "资产名称",
        "调出科室",
        "调入科室",
        "原存放地点",
        "存放地点",
        "调拨原因",
    )

    def test_documented_fields(self) -> None:
        """A 调拨单 line relocates the card's asset from one department and place to another (v2 payload)."""
        row = [
            "DB-1",
            "2024-06-20",
            "ZC-2015-00021",
            "监护仪",
            "急诊科",
            "ICU",
            "急诊EICU",
            "住院部5楼ICU抢救间",
            "支援",
        ]
        (event,) = events(table(self.HEADER, row))
        assert isinstance(event, AssetRelocated)
        assert event.schema_version == 2
        assert event.subject == asset_id_for(Identifier(scheme="hrp.card", value="ZC-2015-00021"))
        assert event.payload.to == LocationRef(department=ICU, location="住院部5楼ICU抢救间")
        assert event.payload.from_ == LocationRef(department=EMERGENCY, location="急诊EICU")
        assert (event.payload.reason, event.payload.document_no) == ("支援", "DB-1")
        assert event.occurred_at == datetime(2024, 6, 19, 16, tzinfo=UTC)
        assert event.model_dump(mode="json", by_alias=True)["payload"]["from"]["department"]["code"] == "0102"

    def test_without_a_source_the_previous_place_is_unknown(self) -> None:
        """A transfer naming only its destination has no `from`."""
        (event,) = events(table(["资产编号", "调入科室", "调拨日期"], ["ZC-1", "ICU", "2024-06-01"]))
        assert event.payload.from_ is None

    def test_unknown_department_is_kept_by_name(self) -> None:
        """HRP departments are not strict by default: an unknown one lands by name, as in the ledger."""
        (event,) = events(table(["资产编号", "调入科室", "调拨日期"], ["ZC-1", "康复医学科", "2024-06-01"]))
        assert event.payload.to.department == DeptRef(name="康复医学科")

    def test_invalid_date_fails_naming_file_line_and_column(self) -> None:
        """A transfer date that does not exist fails on its column."""
        result = run(
            table(self.HEADER, ["DB-1", "2024-06-31", "ZC-1", "x", "急诊科", "ICU", "", "", ""]), "db.csv"
        )
        failure = result.failures[0]
        assert (
            failure.location.file,
            failure.location.line,
            failure.location.column,
            failure.location.field,
        ) == (
            "db.csv",
            2,
            "调拨日期",
            "transferred_on",
        )
        assert failure.code == "invalid_date"
        assert failure.position == "line:2"

    def test_same_document_in_two_exports_is_one_event(self) -> None:
        """A numbered document line has the same event id in every export that carries it."""
        data = table(self.HEADER, ["DB-1", "2024-06-20", "ZC-1", "x", "急诊科", "ICU", "", "", ""])
        first = events(data, message_id="export-1")[0]
        second = events(data, message_id="export-2")[0]
        assert first.event_id == second.event_id == event_id_for("hrp", "doc:transfer:DB-1", "ZC-1")

    def test_two_assets_on_one_document_are_two_events(self) -> None:
        """A document moving two devices gives each its own event id."""
        rows = [["DB-1", "2024-06-20", c, "x", "急诊科", "ICU", "", "", ""] for c in ("ZC-1", "ZC-2")]
        assert len({e.event_id for e in events(table(self.HEADER, *rows))}) == 2

    def test_unnumbered_rows_are_keyed_by_line(self) -> None:
        """Without a document number the id is the export's line, as in the ledger."""
        (event,) = events(
            table(["资产编号", "调入科室", "调拨日期"], ["ZC-1", "ICU", "2024-06-01"]), message_id="m"
        )
        assert event.event_id == event_id_for("hrp", "m", "line:2")


class TestAcceptanceAndCommissioning:
    HEADER = ("验收单号", "资产编号", "使用科室", "验收日期", "验收结论", "验收人", "启用日期")

    def test_acceptance_with_a_start_date_states_both_facts(self) -> None:
        """An acceptance form with a 启用日期 gives asset.accepted and asset.commissioned."""
        accepted, commissioned = events(
            table(self.HEADER, ["YS-1", "ZC-1", "ICU", "2024-05-01", "合格", "赵工", "2024-05-03"])
        )
        assert isinstance(accepted, AssetAccepted)
        assert accepted.payload.model_dump() == {
            "accepted_on": date(2024, 5, 1),
            "result": "passed",
            "accepted_by": "赵工",
            "document_no": "YS-1",
        }
        assert isinstance(commissioned, AssetCommissioned)
        assert (commissioned.payload.commissioned_on, commissioned.payload.department) == (
            date(2024, 5, 3),
            ICU,
        )
        assert accepted.event_id != commissioned.event_id

    @pytest.mark.parametrize(
        ("word", "result"), [("有条件通过", "conditional"), ("不合格", "failed"), ("", "passed")]
    )
    def test_acceptance_results(self, word: str, result: str) -> None:
        """Acceptance words map to passed / failed / conditional; an empty cell means passed."""
        accepted = events(table(self.HEADER, ["YS-1", "ZC-1", "ICU", "2024-05-01", word, "", ""]))[0]
        assert accepted.payload.result == result

    def test_unknown_acceptance_word_fails_naming_it(self) -> None:
        """A conclusion the mapping lacks is a dead letter naming it."""
        failure = run(table(self.HEADER, ["YS-1", "ZC-1", "ICU", "2024-05-01", "待复核", "", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("unknown_acceptance_result", "验收结论")
        assert "'待复核'" in failure.reason

    def test_commissioning_form(self) -> None:
        """A 启用 form gives asset.commissioned with its date and department."""
        (event,) = events(
            table(["启用单号", "资产编号", "使用科室", "启用日期"], ["QY-1", "ZC-1", "急诊", "2024-05-03"])
        )
        assert isinstance(event, AssetCommissioned)
        assert (event.payload.commissioned_on, event.payload.department) == (date(2024, 5, 3), EMERGENCY)


class TestDisposals:
    def test_documented_fields(self) -> None:
        """A 报废单 line decommissions the asset with date, reason, method and number."""
        header = ["报废单号", "资产编号", "报废日期", "报废原因", "处置方式"]
        (event,) = events(table(header, ["BF-1", "ZC-1", "2024-03-01", "超过使用年限，维修成本过高", "拍卖"]))
        assert isinstance(event, AssetDecommissioned)
        assert event.payload.model_dump() == {
            "decommissioned_on": date(2024, 3, 1),
            "reason": "超过使用年限,维修成本过高",  # cells are NFKC-folded, full-width commas included
            "disposal_method": "拍卖",
            "document_no": "BF-1",
        }


class TestDepreciation:
    HEADER = ("期间", "资产编号", "原值", "累计折旧", "净值", "折旧方法")

    def test_documented_fields(self) -> None:
        """A depreciation line gives period, original value, accumulated depreciation, net value, method."""
        (event,) = events(
            table(self.HEADER, ["2024年6月", "ZC-1", "233,000.00", "97,083.33", "135,916.67", "年限平均法"])
        )
        assert isinstance(event, AssetValuationUpdated)
        assert event.payload.period == "2024-06"
        assert event.payload.original_value == Money(amount=Decimal("233000.00"))
        assert (event.payload.accumulated_depreciation.amount, event.payload.net_value.amount) == (
            Decimal("97083.33"),
            Decimal("135916.67"),
        )
        assert event.payload.method == "年限平均法"
        assert event.occurred_at == datetime(2024, 6, 29, 16, tzinfo=UTC)  # the period's last day

    def test_same_run_twice_is_one_event_and_a_corrected_run_is_another(self) -> None:
        """Period and figures key the id: a re-export is the same event, corrected figures a new one."""
        line = ["2024-06", "ZC-1", "100", "50", "50", ""]
        first = events(table(self.HEADER, line), message_id="a")[0]
        again = events(table(self.HEADER, line), message_id="b")[0]
        corrected = events(table(self.HEADER, [*line[:3], "60", "40", ""]), message_id="c")[0]
        assert first.event_id == again.event_id
        assert corrected.event_id != first.event_id

    def test_net_value_is_required(self) -> None:
        """A line without its net value fails on that column."""
        failure = run(table(self.HEADER, ["2024-06", "ZC-1", "100", "50", "", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("missing_required", "净值")

    @pytest.mark.parametrize(
        ("text", "period"),
        [
            ("2024-06", "2024-06"),
            ("2024/6", "2024-06"),
            ("202406", "2024-06"),
            ("2024年06月", "2024-06"),
            ("2024-06-30", "2024-06"),
        ],
    )
    def test_period_forms(self, text: str, period: str) -> None:
        """Every way exports write a month reads as YYYY-MM."""
        assert parse_period(text)[0] == period

    def test_period_out_of_range_fails(self) -> None:
        """Month 13 is not a period."""
        failure = run(table(self.HEADER, ["2024-13", "ZC-1", "100", "50", "50", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("invalid_period", "期间")


class TestContracts:
    HEADER = ("合同编号", "资产编号", "类型", "供应商", "起止日期", "金额")

    def test_documented_fields(self) -> None:
        """A contract line gives number, kind, vendor, term and amount."""
        (event,) = events(
            table(self.HEADER, ["HT-1", "ZC-1", "全保", "GE授权服务商", "2024-01-01至2024-12-31", "12,000"])
        )
        assert isinstance(event, AssetContractRegistered)
        assert event.payload.model_dump() == {
            "contract_no": "HT-1",
            "kind": "service",
            "vendor": "GE授权服务商",
            "starts_on": date(2024, 1, 1),
            "ends_on": date(2024, 12, 31),
            "amount": {"amount": Decimal(12000), "currency": "CNY"},
        }

    def test_separate_start_and_end_columns(self) -> None:
        """开始日期 and 结束日期 columns work as well as one 起止日期 cell; 保修 is a warranty."""
        header = ["合同编号", "资产编号", "类型", "开始日期", "结束日期"]
        (event,) = events(table(header, ["HT-2", "ZC-1", "保修", "2023-05-01", "2026-04-30"]))
        assert (event.payload.kind, event.payload.starts_on, event.payload.ends_on) == (
            "warranty",
            date(2023, 5, 1),
            date(2026, 4, 30),
        )

    def test_one_contract_covering_several_assets(self) -> None:
        """A contract repeated on each device's row is one event per device, keyed by contract and card."""
        rows = [["HT-1", c, "维保", "", "2024-01-01至2024-12-31", ""] for c in ("ZC-1", "ZC-2")]
        first, second = events(table(self.HEADER, *rows))
        assert first.subject != second.subject
        assert first.event_id == event_id_for("hrp", "doc:contract:HT-1", "ZC-1")

    def test_term_ending_before_it_starts_fails(self) -> None:
        """A contract that ends before it starts fails the row."""
        failure = run(
            table(self.HEADER, ["HT-1", "ZC-1", "维保", "", "2024-12-31至2024-01-01", ""])
        ).failures[0]
        assert failure.code == "invalid_term"

    @pytest.mark.parametrize(
        "text",
        [
            "2024-01-01至2024-12-31",
            "2024.01.01-2024.12.31",
            "2024/1/1~2024/12/31",
            "2024年1月1日到2024年12月31日",
        ],
    )
    def test_term_forms(self, text: str) -> None:
        """The ways exports write a term in one cell all read as its first and last day."""
        assert parse_term(text) == (date(2024, 1, 1), date(2024, 12, 31))


class TestCalibration:
    HEADER = ("证书编号", "资产编号", "检定日期", "有效期至", "结论", "检定机构")

    def test_documented_fields(self) -> None:
        """A certificate gives number, date, validity, result and provider."""
        (event,) = events(
            table(self.HEADER, ["JD-1", "ZC-1", "2024-01-05", "2025-01-04", "限用", "XX市计量检定测试院"])
        )
        assert isinstance(event, AssetCalibrated)
        assert event.payload.model_dump() == {
            "certificate_no": "JD-1",
            "calibrated_on": date(2024, 1, 5),
            "valid_until": date(2025, 1, 4),
            "result": "limited",
            "provider": "XX市计量检定测试院",
        }
        assert event.event_id == event_id_for("hrp", "doc:calibration:JD-1", "ZC-1")

    def test_result_is_required(self) -> None:
        """A certificate always has a conclusion: an empty one fails."""
        failure = run(table(self.HEADER, ["JD-1", "ZC-1", "2024-01-05", "2025-01-04", "", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("missing_required", "结论")

    def test_validity_before_the_calibration_fails(self) -> None:
        """A certificate valid only before it was issued fails on 有效期至."""
        failure = run(table(self.HEADER, ["JD-1", "ZC-1", "2024-01-05", "2023-01-04", "合格", ""])).failures[
            0
        ]
        assert (failure.code, failure.location.column) == ("invalid_date", "有效期至")

    def test_missing_card_number_fails(self) -> None:
        """Every document row is keyed by its card number."""
        failure = run(table(self.HEADER, ["JD-1", "", "2024-01-05", "2025-01-04", "合格", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("missing_required", "资产编号")


class TestRecognition:
    def test_ledger_with_a_start_date_column_is_still_a_ledger(self) -> None:
        """A ledger that also lists 启用日期 registers assets: the ledger's own signature is larger."""
        header = ["资产编号", "资产名称", "资产状态", "购置日期", "启用日期"]
        result = run(table(header, ["ZC-1", "呼吸机", "在用", "2024-01-01", "2024-01-05"]))
        assert [type(e.event) for e in result.events] == [AssetRegistered]

    def test_type_column_mixes_kinds_in_one_file(self) -> None:
        """A 单据类型 column lets one export hold several kinds."""
        header = ["单据类型", "单据号", "资产编号", "日期", "调入科室", "报废原因"]
        rows = [
            ["调拨", "D1", "ZC-1", "2024-06-01", "ICU", ""],
            ["报废", "B1", "ZC-2", "2024-06-02", "", "老化"],
        ]
        assert [type(e) for e in events(table(header, *rows))] == [AssetRelocated, AssetDecommissioned]

    def test_document_kind_missing_its_columns_names_them(self) -> None:
        """A typed row of a kind whose columns the file lacks fails naming the missing column."""
        header = ["单据类型", "资产编号", "日期"]
        failure = run(table(header, ["调拨", "ZC-1", "2024-06-01"])).failures[0]
        assert failure.code == "missing_column"
        assert "调入科室" in failure.reason

    def test_documents_do_not_count_as_a_ledger_snapshot(self) -> None:
        """Document events are facts, not snapshots: only asset.registered is a snapshot type."""
        from adapters.hrp import ADAPTER

        assert frozenset({"asset.registered"}) == ADAPTER.snapshot_types
