"""Field accounting for OA records (count only): every non-empty field claimed, ignored or unclaimed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from adapters.oa.mapping import load_oa_mapping
from hub.cli import app
from tests.unit.adapters import _oa

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("path", [_oa.JSON_EXPORT, _oa.XML_EXPORT, _oa.JSONL_PUSH], ids=lambda p: p.name)
def test_every_field_of_the_bundled_examples_is_claimed_or_ignored(path: Path) -> None:
    """The corpus walk for OA: 100 % of the non-empty record fields are accounted."""
    result = _oa.run(path.read_bytes(), path.name)
    accounting = result.accounting
    assert accounting is not None
    assert accounting.rows > 0
    assert accounting.unclaimed == {}, accounting.unclaimed
    assert sum(accounting.claimed.values()) > 0


def test_a_field_no_rule_reads_is_unclaimed_with_samples_and_nested_children_count_as_records() -> None:
    request = {**_oa.REQUEST, "供应商工单号": "V-881"}
    completion = {**_oa.COMPLETION, "供应商工单号": "V-882"}
    result = _oa.run(_oa.json_export(request, _oa.APPROVAL, completion))
    accounting = result.accounting
    assert accounting is not None
    assert accounting.rows == 3
    assert accounting.unclaimed == {"供应商工单号": 2}
    assert accounting.samples["供应商工单号"] == ("V-881", "V-882")
    assert accounting.claimed["资产编号"] == 1
    assert accounting.claimed["处理结果"] == 1  # a group's fields are fields of the record


def test_ignore_list_and_ignored_kinds_count_as_ignored(tmp_path: Path) -> None:
    site = tmp_path / "oa.yaml"
    site.write_text("extends: default\nignore: [设备名称, 供应商工单号]\n", encoding="utf-8")
    follow_up = {"单据类型": "回访", "单据号": "LC099", "回访结果": "满意"}
    request = {**_oa.REQUEST, "供应商工单号": "V-881"}
    result = _oa.run(_oa.json_export(request, follow_up), oa_mapping=load_oa_mapping(site))
    accounting = result.accounting
    assert accounting is not None
    assert accounting.unclaimed == {}
    assert accounting.ignored == {"供应商工单号": 1, "回访结果": 1}  # 单据号 and 单据类型 are claimed


def test_unclaimed_error_fails_the_record_naming_the_field_and_the_others_land(tmp_path: Path) -> None:
    site = tmp_path / "oa.yaml"
    site.write_text("extends: default\nunclaimed: error\nignored_kinds: [回访]\n", encoding="utf-8")
    strict = load_oa_mapping(site)
    request = {**_oa.REQUEST, "供应商工单号": "V-881"}
    follow_up = {"单据类型": "回访", "单据号": "LC099", "回访结果": "满意"}  # an ignored kind: not refused
    result = _oa.run(_oa.json_export(request, _oa.APPROVAL, follow_up), oa_mapping=strict)
    [failure] = result.failures
    assert failure.code == "unclaimed_column"
    assert "供应商工单号" in failure.reason
    assert failure.location.column == "供应商工单号"
    assert [e.event.type for e in result.events] == ["workorder.approved"]
    assert _oa.run(_oa.json_export(_oa.REQUEST), oa_mapping=strict).failures == ()


def test_mapping_check_with_unclaimed_error_fails_naming_the_field(tmp_path: Path) -> None:
    export = tmp_path / "工单导出.json"
    export.write_bytes(_oa.json_export({**_oa.REQUEST, "供应商工单号": "V-881"}))
    site = tmp_path / "oa.yaml"
    site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
    args = ["mapping", "check", "oa", str(export), "--data-dir", str(tmp_path / "hub")]
    warned = CliRunner().invoke(app, args, terminal_width=240)
    assert warned.exit_code == 0, warned.output
    assert "供应商工单号" in warned.output
    assert "V-881" in warned.output
    refused = CliRunner().invoke(app, [*args, "--mapping", str(site)], terminal_width=240)
    assert refused.exit_code == 1
    assert "供应商工单号" in refused.output
