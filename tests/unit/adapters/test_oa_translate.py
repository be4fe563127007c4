"""OA translation: each record kind's documented fields, ids, times, failures and duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.base import Translation
from adapters.oa.mapping import load_oa_mapping
from schemas._base import DeptRef, Identifier, Money
from schemas.assets import LoanedPayload, ReturnedPayload
from schemas.ids import asset_id_for, event_id_for, workorder_id_for
from schemas.work_orders import (
    ApprovedPayload,
    AssignedPayload,
    CancelledPayload,
    ClosedPayload,
    CompletedPayload,
    OnHoldPayload,
    Part,
    Priority,
    RejectedPayload,
    RequestedPayload,
    StartedPayload,
)
from tests.unit.adapters._oa import (
    APPROVAL,
    ASSIGNMENT,
    CANCELLATION,
    CLOSURE,
    COMPLETION,
    HOLD,
    LOAN,
    RECEIVED,
    REJECTION,
    REQUEST,
    RETURN,
    START,
    json_export,
    run,
    xml_export,
)

ICU = DeptRef(code="0101", name="重症医学科")


def one(record: dict[str, Any]) -> Any:
    """Translate one record in a JSON export; it must give exactly one event, and return it."""
    result = run(json_export(record))
    assert result.failures == ()
    assert len(result.events) == 1
    return result.events[0].event


def failure_of(record: dict[str, Any]) -> Any:
    result = run(json_export(record))
    assert result.events == ()
    assert len(result.failures) == 1
    return result.failures[0]


class TestWorkOrderKinds:
    def test_request(self) -> None:
        """A 报修单 is workorder.requested with asset (HRP card), department code, symptom, priority, channel."""
        event = one(REQUEST)
        assert event.type == "workorder.requested"
        assert event.subject == workorder_id_for("oa", "WX-0001")
        assert event.payload == RequestedPayload(
            asset=Identifier(scheme="hrp.card", value="ZC-2017-00023"),
            reporting_department=ICU,
            symptom="开机自检失败",
            priority=Priority.URGENT,
            channel="scan",
            requested_by="王丽",
        )

    def test_request_with_only_the_oa_device_number(self) -> None:
        """Without a card number, the OA's own 设备编号 names the asset under scheme oa.no."""
        record = {k: v for k, v in REQUEST.items() if k != "资产编号"} | {"设备编号": "SB1700023"}
        assert one(record).payload.asset == Identifier(scheme="oa.no", value="SB1700023")

    def test_card_number_wins_over_device_number(self) -> None:
        """With both numbers present, the mapping's first identifier (the HRP card) is used."""
        assert one(REQUEST | {"设备编号": "SB1700023"}).payload.asset.scheme == "hrp.card"

    def test_full_width_card_number_is_folded(self) -> None:
        """A card number typed in full-width characters is the same asset as the ledger's."""
        assert (
            one(REQUEST | {"资产编号": "ＺＣ－２０１７－０００２３"}).payload.asset.value == "ZC-2017-00023"
        )

    def test_blank_priority_and_channel_take_the_defaults(self) -> None:
        """Blank 紧急程度/报修方式 become normal priority and the oa channel."""
        payload = one(REQUEST | {"紧急程度": "", "报修方式": " "}).payload
        assert (payload.priority, payload.channel) == (Priority.NORMAL, "oa")

    def test_unknown_channel_is_other(self) -> None:
        """The channel map is not strict: an unknown word becomes `other`, not a failure."""
        assert one(REQUEST | {"报修方式": "微信小程序"}).payload.channel == "other"

    def test_approval(self) -> None:
        """An approving 审批记录 is workorder.approved with amount, approver and level."""
        event = one(APPROVAL)
        assert event.type == "workorder.approved"
        assert event.payload == ApprovedPayload(
            amount=Money(amount=Decimal("18900.00")), approver="黄伟（设备科）", level=2
        )

    def test_rejection(self) -> None:
        """A 驳回 审批记录 is workorder.rejected with its reason; 一级 is level 1."""
        event = one(REJECTION)
        assert event.type == "workorder.rejected"
        assert event.payload == RejectedPayload(approver="黄伟（设备科）", level=1, reason="费用偏高")

    def test_approval_level_by_role_word(self) -> None:
        """A level named by role (分管院长) is read through the mapping's approval_levels."""
        assert one(APPROVAL | {"审批级别": "分管院长"}).payload.level == 3

    def test_approval_below_threshold_is_translated(self) -> None:
        """An approval for less than the threshold is still a faithful approval."""
        assert one(APPROVAL | {"审批金额": "800"}).payload.amount == Money(amount=Decimal(800))

    def test_assignment(self) -> None:
        """A 派工 is workorder.assigned with engineer and team."""
        event = one(ASSIGNMENT)
        assert event.type == "workorder.assigned"
        assert event.payload == AssignedPayload(engineer="周建国", team="生命支持组")

    def test_start(self) -> None:
        """A 开始维修 is workorder.started with the engineer."""
        event = one(START)
        assert (event.type, event.payload) == ("workorder.started", StartedPayload(engineer="周建国"))

    def test_hold(self) -> None:
        """A 挂起 is workorder.on_hold with its reason."""
        event = one(HOLD)
        assert (event.type, event.payload) == ("workorder.on_hold", OnHoldPayload(reason="等待配件到货"))

    def test_completion(self) -> None:
        """A 完工 is workorder.completed: resolution, parts (cost = price x quantity), hours, cost, downtime."""
        event = one(COMPLETION)
        assert event.type == "workorder.completed"
        assert event.payload == CompletedPayload(
            resolution="更换流量传感器后测试正常",
            parts=[
                Part(
                    code="HX-FS01",
                    name="流量传感器",
                    quantity=Decimal(2),
                    cost=Money(amount=Decimal("8400.00")),
                )
            ],
            labour_hours=Decimal("3.5"),
            cost=Money(amount=Decimal("18900.00")),
            downtime_minutes=2880,
        )

    def test_completion_of_costly_repair_without_approval_is_not_a_failure(self) -> None:
        """A 完工 over the approval threshold, with no approval in the export, still translates."""
        result = run(json_export(REQUEST, COMPLETION))
        assert (len(result.events), result.failures) == (2, ())

    def test_completion_parts_as_text(self) -> None:
        """Parts written as text (主板×1；电源模块*2) become two parts with their quantities."""
        event = one(COMPLETION | {"更换配件": "主板×1；电源模块*2"})
        assert [(p.name, p.quantity) for p in event.payload.parts] == [("主板", 1), ("电源模块", 2)]

    def test_closure(self) -> None:
        """A 验收 is workorder.closed by whoever accepted it."""
        event = one(CLOSURE)
        assert (event.type, event.payload) == ("workorder.closed", ClosedPayload(closed_by="王丽"))

    def test_cancellation(self) -> None:
        """A 撤销 is workorder.cancelled with its reason."""
        event = one(CANCELLATION)
        assert event.type == "workorder.cancelled"
        assert event.subject == workorder_id_for("oa", "WX-0002")
        assert event.payload == CancelledPayload(reason="误报")


class TestLendingKinds:
    def test_loan(self) -> None:
        """A 借出 is asset.loaned on the asset: departments by code, person, due at the end of the due day."""
        event = one(LOAN)
        assert event.type == "asset.loaned"
        assert event.subject == asset_id_for(Identifier(scheme="hrp.card", value="ZC-2012-00013"))
        assert event.payload == LoanedPayload(
            loan_id="JY20240001",
            borrower_department=ICU,
            lender_department=DeptRef(code="0202", name="呼吸与危重症医学科"),
            responsible_person="赵敏",
            due_at=datetime(2024, 5, 10, 15, 59, 59, tzinfo=UTC),
        )
        assert event.occurred_at == datetime(2024, 5, 1, 1, 0, tzinfo=UTC)

    def test_return(self) -> None:
        """A 归还 is asset.returned with the loan id, the return time and the condition."""
        event = one(RETURN)
        assert event.type == "asset.returned"
        assert event.payload == ReturnedPayload(
            loan_id="JY20240001",
            returned_at=datetime(2024, 5, 9, 7, 20, tzinfo=UTC),
            condition="外观轻微划痕",
        )

    def test_unknown_department_is_kept_by_name(self) -> None:
        """A borrower department not in the code list keeps its name when departments are not strict."""
        assert one(LOAN | {"借用科室": "康复医学科"}).payload.borrower_department == DeptRef(
            name="康复医学科"
        )


class TestDepartmentNotes:
    """A record kept with a department the mapping does not know carries a `department_unknown` note."""

    def test_request_with_an_unknown_department_is_kept_and_noted(self) -> None:
        """The event lands (department by name), and one note names file, record, column and field."""
        result = run(json_export(ASSIGNMENT, REQUEST | {"报修科室": "康复医学科"}))
        assert result.failures == ()
        (_, request) = (e.event for e in result.events)
        assert request.payload.reporting_department == DeptRef(name="康复医学科")
        (note,) = result.notes
        assert (note.position, note.code) == ("record:2#department", "department_unknown")
        assert (note.location.file, note.location.column, note.location.field) == (
            "export.json", "报修科室", "department"
        )  # fmt: skip
        assert note.reason.startswith("record 2 (报修单): 报修科室 (department): '康复医学科'")
        assert "then retry" in note.reason

    def test_xml_loan_notes_each_unknown_department(self) -> None:
        """Borrower and lender both unknown: two notes on the one record, by field."""
        result = run(xml_export(LOAN | {"借用科室": "康复医学科", "借出科室": "后勤保障处"}), "借用.xml")
        assert [e.event.type for e in result.events] == ["asset.loaned"]
        assert sorted(n.position for n in result.notes) == [
            "record:1#borrower_department", "record:1#lender_department"
        ]  # fmt: skip

    def test_known_departments_and_failed_records_carry_no_note(self) -> None:
        """No note when the mapping knows the department, nor for a record that failed anyway."""
        result = run(
            json_export(REQUEST, REQUEST | {"单据号": "LC099", "报修科室": "康复医学科", "紧急程度": "?"})
        )
        assert (len(result.events), len(result.failures), result.notes) == (1, 1, ())

    def test_strict_departments_fail_without_a_note(self, tmp_path: Any) -> None:
        site = tmp_path / "oa.yaml"
        site.write_text("extends: default\nstrict_departments: true\n", encoding="utf-8")
        result = run(json_export(REQUEST | {"报修科室": "康复医学科"}), oa_mapping=load_oa_mapping(site))
        assert (result.events, result.notes, result.failures[0].code) == ((), (), "unknown_department")


class TestEnvelope:
    def test_times(self) -> None:
        """occurred_at is the record's own time read in Asia/Shanghai; recorded_at is the receive time."""
        event = one(REQUEST)
        assert event.occurred_at == datetime(2024, 4, 2, 9, 22, tzinfo=UTC)
        assert event.recorded_at == RECEIVED

    def test_source(self) -> None:
        """The source names system, site, message, raw reference and adapter version."""
        source = one(REQUEST).source
        assert (source.system, source.site, source.message_id, source.raw_ref) == (
            "oa", "demo", "export.json", "raw-export.json",
        )  # fmt: skip
        assert source.adapter_version == "oa/1.0.0"

    def test_event_id_from_document_number(self) -> None:
        """A record with a 单据号 gets its id from the site, document number and event type."""
        assert one(REQUEST).event_id == event_id_for("oa", "site:demo", "doc:LC001:workorder.requested")

    def test_event_id_without_document_number_is_positional(self) -> None:
        """A record without a 单据号 gets its id from the message id and its position."""
        record = {k: v for k, v in REQUEST.items() if k != "单据号"}
        assert one(record).event_id == event_id_for("oa", "export.json", "record:1:workorder.requested")

    def test_same_document_in_two_exports_is_the_same_event(self) -> None:
        """The same document in a JSON export and an XML export gives identical event ids."""
        from_json = run(json_export(REQUEST, APPROVAL), "q2.json")
        from_xml = run(xml_export(APPROVAL, REQUEST), "loans.xml")
        assert {e.event.event_id for e in from_json.events} == {e.event.event_id for e in from_xml.events}

    def test_translation_is_deterministic(self) -> None:
        """Translating the same export twice gives identical events, ids included."""
        payload = json_export(REQUEST, APPROVAL, ASSIGNMENT, COMPLETION, LOAN, RETURN)
        first, second = run(payload), run(payload)
        assert [e.event for e in first.events] == [e.event for e in second.events]

    def test_position_and_line(self) -> None:
        """Each event keeps its record position and the line the record starts on."""
        result = run(json_export(REQUEST, APPROVAL))
        assert [(e.position, e.location.line) for e in result.events] == [("record:1", 4), ("record:2", 16)]


class TestFailures:
    def test_unknown_kind_names_the_code(self) -> None:
        """An unknown 单据类型 fails with unknown_kind, quoting the word and the field."""
        failure = failure_of({"单据类型": "报废申请", "单据号": "X1", "资产编号": "ZC-1"})
        assert failure.code == "unknown_kind"
        assert "'报废申请'" in failure.reason
        assert (failure.location.column, failure.location.field) == ("单据类型", "kind")

    def test_missing_kind(self) -> None:
        """A record without a kind field fails naming the names looked for."""
        failure = failure_of({"工单号": "WX-1"})
        assert failure.code == "missing_required"
        assert "单据类型 (kind) is missing" in failure.reason

    def test_unknown_priority_in_strict_map_names_the_code(self) -> None:
        """An unknown 紧急程度 fails with unknown_code naming the file, record, line and field."""
        failure = failure_of(REQUEST | {"紧急程度": "特急加急"})
        assert failure.code == "unknown_code"
        assert failure.position == "record:1"
        assert str(failure.location) == "export.json, line 4, column 紧急程度, field priority"
        assert "record 1 (报修单): 紧急程度 (priority): unknown code '特急加急'" in failure.reason

    def test_unknown_approval_result(self) -> None:
        """An approval result outside the strict map fails naming it."""
        failure = failure_of(APPROVAL | {"审批结果": "待定"})
        assert (failure.code, failure.location.field) == ("unknown_code", "result")

    def test_missing_required_field(self) -> None:
        """A 报修单 without 故障描述 fails with missing_required naming the names looked for."""
        failure = failure_of({k: v for k, v in REQUEST.items() if k != "故障描述"})
        assert failure.code == "missing_required"
        assert failure.location.field == "symptom"
        assert "故障描述 (symptom) is missing or empty (looked for 故障描述, 故障现象" in failure.reason

    def test_missing_asset_identifier(self) -> None:
        """A 报修单 with neither card nor device number fails naming both."""
        failure = failure_of({k: v for k, v in REQUEST.items() if k != "资产编号"})
        assert failure.location.field == "asset"
        assert "资产编号" in failure.reason
        assert "设备编号" in failure.reason

    def test_bad_time(self) -> None:
        """An impossible date fails with invalid_date naming the field as written."""
        failure = failure_of(LOAN | {"预计归还时间": "2024-06-31"})
        assert (failure.code, failure.location.column, failure.location.field) == (
            "invalid_date", "预计归还时间", "due_at",
        )  # fmt: skip

    def test_every_problem_of_a_record_is_reported(self) -> None:
        """A record with several problems lists them all in one failure."""
        failure = failure_of(COMPLETION | {"维修工时": "三小时", "维修费用": "待定", "处理信息": {}})
        assert "维修工时 (labour_hours)" in failure.reason
        assert "维修费用 (cost)" in failure.reason

    def test_negative_cost(self) -> None:
        """A negative repair cost is refused."""
        failure = failure_of(COMPLETION | {"处理信息": {"维修费用": "-100"}})
        assert (failure.code, failure.location.field) == ("invalid_amount", "cost")

    def test_strict_departments(self, tmp_path: Any) -> None:
        """With strict_departments, an unknown department fails naming it."""
        site = tmp_path / "oa.yaml"
        site.write_text("extends: default\nstrict_departments: true\n", encoding="utf-8")
        result = run(json_export(REQUEST | {"报修科室": "康复医学科"}), oa_mapping=load_oa_mapping(site))
        assert result.failures[0].code == "unknown_department"
        assert "'康复医学科'" in result.failures[0].reason

    def test_good_records_land_beside_bad_ones(self) -> None:
        """One bad record does not stop the others."""
        result = run(json_export(REQUEST, REQUEST | {"单据号": "LC099", "紧急程度": "?"}, ASSIGNMENT))
        assert [e.event.type for e in result.events] == ["workorder.requested", "workorder.assigned"]
        assert [f.position for f in result.failures] == ["record:2"]
        assert result.units == 3

    def test_non_object_record(self) -> None:
        """A record that is not an object is a failure of its own."""
        result = run(json_export(REQUEST, "text", 5))
        assert [(f.position, f.code) for f in result.failures] == [
            ("record:2", "not_an_object"), ("record:3", "not_an_object"),
        ]  # fmt: skip
        assert len(result.events) == 1

    def test_excerpt_holds_the_record_text(self) -> None:
        """A failure carries the record's text fields for the person fixing it."""
        failure = failure_of(REQUEST | {"紧急程度": "特急加急"})
        assert failure.excerpt is not None
        assert failure.excerpt["工单号"] == "WX-0001"


class TestDuplicatesAndSkips:
    def test_identical_repeat_is_skipped(self) -> None:
        """The same document twice in one export is one event, the repeat skipped."""
        result: Translation = run(json_export(REQUEST, REQUEST))
        assert len(result.events) == 1
        assert result.skipped == ("record:2: repeats record 1 (document LC001)",)

    def test_conflicting_repeat_fails(self) -> None:
        """The same document number with different content is a duplicate_document failure."""
        result = run(json_export(REQUEST, REQUEST | {"故障描述": "屏幕黑屏"}))
        assert len(result.events) == 1
        assert result.failures[0].code == "duplicate_document"
        assert result.failures[0].location.column == "单据号"

    def test_ignored_kind_is_skipped(self) -> None:
        """A kind listed under ignored_kinds (回访) is skipped, not a failure."""
        result = run(json_export({"单据类型": "回访", "工单号": "WX-0001"}))
        assert (result.events, result.failures, result.skipped) == (
            (),
            (),
            ("record:1: 回访 (ignored_kinds)",),
        )


class TestFormatsAndEncodings:
    @pytest.mark.parametrize("encoding", ["utf-8", "gbk", "gb18030"])
    def test_xml_in_declared_encoding(self, encoding: str) -> None:
        """An XML export in GBK, GB18030 or UTF-8, declared in its XML declaration, translates alike."""
        result = run(xml_export(REQUEST, COMPLETION, LOAN, encoding=encoding), "export.xml")
        assert result.failures == ()
        expected = run(json_export(REQUEST, COMPLETION, LOAN)).events
        assert [(e.event.event_id, e.event.payload) for e in result.events] == [
            (e.event.event_id, e.event.payload) for e in expected
        ]

    def test_utf8_bom_json(self) -> None:
        """A UTF-8 JSON export with a byte-order mark translates."""
        result = run(b"\xef\xbb\xbf" + json_export(REQUEST))
        assert [e.event.payload.symptom for e in result.events] == ["开机自检失败"]

    def test_gbk_json(self) -> None:
        """A GBK JSON export (no declaration possible) is detected and translates."""
        result = run(json_export(REQUEST, encoding="gbk"))
        assert result.events[0].event.payload.reporting_department == ICU

    def test_json_lines(self) -> None:
        """JSON Lines: one record per line, positions are lines, a broken line fails alone."""
        import json

        lines = [
            json.dumps(REQUEST, ensure_ascii=False),
            "{not json",
            "",
            json.dumps(ASSIGNMENT, ensure_ascii=False),
        ]
        result = run("\n".join(lines).encode(), "push.jsonl")
        assert [e.position for e in result.events] == ["line:1", "line:4"]
        assert [(f.position, f.code) for f in result.failures] == [("line:2", "unreadable_record")]

    def test_webhook_single_record_with_content_type(self) -> None:
        """A webhook body holding one record, with its Content-Type, translates like an export."""
        import json

        body = json.dumps(REQUEST, ensure_ascii=False).encode()
        result = run(body, "webhook-1", content_type="application/json; charset=utf-8")
        assert [e.event.type for e in result.events] == ["workorder.requested"]

    def test_webhook_xml_body(self) -> None:
        """A webhook body in XML, named by its content type only, translates."""
        result = run(xml_export(REQUEST), "webhook-2", content_type="application/xml")
        assert [e.event.type for e in result.events] == ["workorder.requested"]
