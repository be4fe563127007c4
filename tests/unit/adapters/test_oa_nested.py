"""Records nested in records: a workflow export's approval log and repair result inside the request.

Before `nested:`, only the request was read and the steps were silently lost (issue 11).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.oa.mapping import NestedRule
from tests.unit.adapters._oa import mapping, run

WORKFLOW_XML = """<?xml version="1.0" encoding="UTF-8"?>
<工单列表>
  <工单 单据类型="报修单">
    <工单号>WX-0101</工单号>
    <资产编号>ZC-2017-00023</资产编号>
    <报修科室>重症医学科</报修科室>
    <故障描述>开机自检失败</故障描述>
    <紧急程度>紧急</紧急程度>
    <报修时间>2024-04-02 17:22:00</报修时间>
    <审批记录>
      <审批><审批人>李强</审批人><审批级别>科主任</审批级别><审批结果>同意</审批结果>
        <审批时间>2024-04-02 18:00:00</审批时间></审批>
      <审批><审批人>黄伟</审批人><审批级别>设备科</审批级别><审批结果>同意</审批结果>
        <审批金额>18900</审批金额><审批时间>2024-04-03 09:00:00</审批时间></审批>
    </审批记录>
    <维修结果>
      <维修工程师>周建国</维修工程师>
      <处理结果>更换流量传感器后测试正常</处理结果>
      <完工时间>2024-04-05 16:00:00</完工时间>
    </维修结果>
  </工单>
</工单列表>
""".encode()

REQUEST: dict[str, Any] = {
    "单据类型": "报修单", "工单号": "WX-0101", "资产编号": "ZC-2017-00023", "报修科室": "重症医学科",
    "故障描述": "开机自检失败", "紧急程度": "紧急", "报修时间": "2024-04-02 17:22:00",
}  # fmt: skip
STEP_1 = {"审批人": "李强", "审批级别": "科主任", "审批结果": "同意", "审批时间": "2024-04-02 18:00:00"}
STEP_2 = {"审批人": "黄伟", "审批级别": "设备科", "审批结果": "驳回", "审批时间": "2024-04-03 09:00:00"}
RESULT = {"处理结果": "更换电池", "完工时间": "2024-04-05 16:00:00"}


def _types(translation: Any) -> list[str]:
    return [e.event.type for e in translation.events]


def test_xml_workflow_yields_request_approvals_and_completion() -> None:
    """The request, both approval steps and the repair result each become an event, in order."""
    out = run(WORKFLOW_XML, "流程导出.xml")
    assert out.failures == ()
    assert _types(out) == [
        "workorder.requested",
        "workorder.approved",
        "workorder.approved",
        "workorder.completed",
    ]
    subjects = {e.event.subject for e in out.events}
    assert len(subjects) == 1  # every child took the work order from its parent
    positions = [e.position for e in out.events]
    assert positions == ["record:1", "record:1/审批记录[1]", "record:1/审批记录[2]", "record:1/维修结果[1]"]
    lines = [e.location.line or 0 for e in out.events if e.location is not None]
    assert lines[1] < lines[2] < lines[3]  # each child names its own line, not its parent's
    assert len({e.event.event_id for e in out.events}) == 4


def test_json_workflow_matches_xml() -> None:
    """The same workflow as JSON nests the same way and yields the same event types."""
    body = {"记录": [{**REQUEST, "审批记录": [STEP_1, STEP_2], "维修结果": RESULT}]}
    out = run(json.dumps(body, ensure_ascii=False).encode(), "流程导出.json")
    assert out.failures == ()
    assert _types(out) == [
        "workorder.requested",
        "workorder.approved",
        "workorder.rejected",
        "workorder.completed",
    ]


def test_a_bad_child_names_its_path_and_the_rest_land() -> None:
    """A child missing its result fails alone, named by its element path; parent and siblings land."""
    bad = {k: v for k, v in STEP_2.items() if k != "审批结果"}
    body = {"记录": [{**REQUEST, "审批记录": [STEP_1, bad]}]}
    out = run(json.dumps(body, ensure_ascii=False).encode(), "流程导出.json")
    assert _types(out) == ["workorder.requested", "workorder.approved"]
    assert [f.position for f in out.failures] == ["record:1/审批记录[2]"]
    assert "record:1/审批记录[2]" in out.failures[0].reason
    assert "result" in out.failures[0].reason


def test_a_plain_value_under_a_nested_name_stays_a_field() -> None:
    """`维修结果: 更换电池` on a completion is its resolution text, not a nested record."""
    completion = {
        "单据类型": "完工",
        "工单号": "WX-0101",
        "维修结果": "更换电池",
        "完工时间": "2024-04-05 16:00:00",
    }
    out = run(json.dumps({"记录": [completion]}, ensure_ascii=False).encode(), "完工.json")
    assert out.failures == ()
    assert _types(out) == ["workorder.completed"]
    assert "更换电池" in out.events[0].event.model_dump_json()


def test_the_child_keeps_its_own_values_over_the_parents() -> None:
    """Inheritance fills only what the child lacks: a child naming another work order keeps it."""
    body = {"记录": [{**REQUEST, "审批记录": [{**STEP_1, "工单号": "WX-0999"}]}]}
    out = run(json.dumps(body, ensure_ascii=False).encode(), "流程导出.json")
    assert out.events[0].event.subject != out.events[1].event.subject


def test_without_a_rule_the_steps_are_not_records() -> None:
    """A site mapping with no `nested:` rules reads only the parents (the old behaviour, chosen)."""
    plain = mapping().model_copy(update={"nested": []})
    out = run(WORKFLOW_XML, "流程导出.xml", oa_mapping=plain)
    assert _types(out) == ["workorder.requested"]


def test_mapping_check_reports_bad_nested_rules() -> None:
    """An inherit field the mapping does not know, and a path name claimed twice, are problems."""
    bad = mapping().model_copy(
        update={
            "nested": [
                NestedRule(path=["审批记录"], kind="approval", inherit=["nosuch"]),
                NestedRule(path=["审批记录"], kind="completion"),
            ]
        }
    )
    problems = [message for _, message in bad.problems()]
    assert any("unknown field 'nosuch'" in p for p in problems)
    assert any("also the path of nested rule 0" in p for p in problems)


@settings(max_examples=30, deadline=None)
@given(steps=st.integers(min_value=0, max_value=6), as_xml=st.booleans(), group=st.booleans())
def test_every_step_becomes_one_event_whatever_the_shape(steps: int, as_xml: bool, group: bool) -> None:
    """N steps (inside a group or not, XML or JSON) give exactly N approvals after one request."""
    approvals = [{**STEP_1, "审批时间": f"2024-04-0{2 + i % 7} 18:00:00"} for i in range(steps)]
    nested: dict[str, Any] = {"审批记录": approvals} if steps else {}
    record = {**REQUEST, "流程信息": nested} if group else {**REQUEST, **nested}
    if as_xml:
        payload = _xml(record)
        out = run(payload, "流程导出.xml")
    else:
        out = run(json.dumps({"记录": [record]}, ensure_ascii=False).encode(), "流程导出.json")
    assert out.failures == ()
    assert _types(out) == ["workorder.requested", *["workorder.approved"] * steps]


def _xml(record: dict[str, Any]) -> bytes:
    def field(name: str, value: Any) -> str:
        if isinstance(value, dict):
            return f"<{name}>" + "".join(field(k, v) for k, v in value.items()) + f"</{name}>"
        if isinstance(value, list):
            inner = "".join(
                "<审批>" + "".join(f"<{k}>{v}</{k}>" for k, v in s.items()) + "</审批>" for s in value
            )
            return f"<{name}>{inner}</{name}>"
        return f"<{name}>{value}</{name}>"

    body = "".join(field(k, v) for k, v in record.items())
    return f"<工单列表><工单>{body}</工单></工单列表>".encode()
