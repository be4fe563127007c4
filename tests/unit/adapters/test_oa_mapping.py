"""The OA mapping: the bundled defaults, and line-precise errors for mistakes in a site's file."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from adapters.errors import MappingError
from adapters.oa import ADAPTER
from adapters.oa.mapping import DEFAULT_MAPPING, KINDS, OA_FIELDS, load_oa_mapping
from schemas._base import SourceSystem
from schemas.work_orders import Priority
from tests.unit.adapters._oa import mapping

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oa.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestAdapterSpec:
    def test_spec(self) -> None:
        """The adapter is OA, version oa/1.0.0, no snapshot types, the bundled mapping as default."""
        assert (ADAPTER.system, ADAPTER.version, ADAPTER.snapshot_types) == (
            SourceSystem.OA,
            "oa/1.0.0",
            frozenset(),
        )
        assert ADAPTER.default_mapping == DEFAULT_MAPPING
        assert ADAPTER.load_mapping(DEFAULT_MAPPING).version == mapping().version


class TestDefaultMapping:
    def test_version_is_content_hash(self) -> None:
        """The version is the first 12 hex digits of the sha256 of the file's bytes."""
        assert mapping().version == hashlib.sha256(DEFAULT_MAPPING.read_bytes()).hexdigest()[:12]

    def test_every_kind_is_mapped(self) -> None:
        """The bundled mapping selects every record kind the adapter knows."""
        assert set(mapping().kinds) == set(KINDS)

    def test_columns_cover_every_field(self) -> None:
        """Every canonical field has names to look for."""
        assert set(mapping().columns) == OA_FIELDS

    @pytest.mark.parametrize(
        ("word", "kind"),
        [
            ("报修单", "request"), ("审批记录", "approval"), ("派工", "assignment"), ("开始维修", "start"),
            ("挂起", "hold"), ("完工", "completion"), ("验收", "closure"), ("关闭", "closure"),
            ("撤销", "cancellation"), ("借用申请", "loan"), ("借出", "loan"), ("归还", "return"),
            ("回访", "ignored"), ("报废申请", None),
        ],
    )  # fmt: skip
    def test_kind_words(self, word: str, kind: str | None) -> None:
        """The issue's record kinds select their kind; ignored kinds say so; others are unknown."""
        assert mapping().kind_of(word) == kind

    @pytest.mark.parametrize(
        ("word", "priority"),
        [("紧急", Priority.URGENT), ("高", Priority.HIGH), ("普通", Priority.NORMAL), ("低", Priority.LOW)],
    )
    def test_priorities(self, word: str, priority: Priority) -> None:
        """紧急/高/普通/低 map to the four priorities."""
        assert mapping().priorities.lookup(word) == priority

    @pytest.mark.parametrize(
        ("word", "channel"), [("扫码", "scan"), ("OA", "oa"), ("oa", "oa"), ("电话", "phone")]
    )
    def test_channels(self, word: str, channel: str) -> None:
        """扫码/OA/电话 map to scan/oa/phone, ignoring case."""
        assert mapping().channels.lookup(word) == channel

    def test_threshold(self) -> None:
        """Repairs of 10,000 CNY or more need approval."""
        assert mapping().approval_threshold == 10_000

    def test_kind_names_come_first(self) -> None:
        """A kind's own names for a field are tried before the shared ones (完工时间 before 发生时间)."""
        labels = mapping().labels("completion", "time")
        assert labels.index("完工时间") < labels.index("发生时间")


class TestSiteMappings:
    def test_extends_default(self, tmp_path: Path) -> None:
        """A site file extending the default changes only what it lists."""
        loaded = load_oa_mapping(write(tmp_path, "extends: default\nchannels:\n  strict: true\n"))
        assert loaded.channels.strict is True
        assert loaded.channels.lookup("扫码") == "scan"
        assert loaded.kinds == mapping().kinds

    def test_kind_field_names_override_shared_ones(self, tmp_path: Path) -> None:
        """A name a kind claims for one field is not read as another field in that kind."""
        text = "extends: default\nkinds:\n  approval:\n    fields: {amount: [维修费用]}\n"
        loaded = load_oa_mapping(write(tmp_path, text))
        assert "维修费用" in loaded.labels("approval", "amount")
        assert "维修费用" not in loaded.labels("approval", "cost")
        assert "维修费用" in loaded.labels("completion", "cost")

    def test_unknown_kind_names_line(self, tmp_path: Path) -> None:
        """A kind the adapter does not know is refused at its line."""
        path = write(tmp_path, "extends: default\nkinds:\n  scrap:\n    values: [报废]\n")
        with pytest.raises(MappingError, match=rf"{path}:3: kinds\.scrap"):
            load_oa_mapping(path)

    def test_kind_word_claimed_twice(self, tmp_path: Path) -> None:
        """One kind-field value selecting two kinds is refused at the second one's line."""
        path = write(tmp_path, "extends: default\nkinds:\n  hold:\n    values: [挂起, 派工]\n")
        with pytest.raises(
            MappingError, match=rf"{path}:4: kinds\.hold\.values\[1\]: '派工' already selects assignment"
        ):
            load_oa_mapping(path)

    def test_unknown_field_in_kind(self, tmp_path: Path) -> None:
        """A kind naming a field the adapter does not know is refused at its line."""
        path = write(tmp_path, "extends: default\nkinds:\n  request:\n    fields:\n      colour: [颜色]\n")
        with pytest.raises(
            MappingError, match=rf"{path}:5: kinds\.request\.fields\.colour: unknown field 'colour'"
        ):
            load_oa_mapping(path)

    def test_bad_priority_value(self, tmp_path: Path) -> None:
        """A priority word mapped outside the Priority values is refused at its line."""
        path = write(tmp_path, "extends: default\npriorities:\n  codes:\n    紧急: critical\n")
        with pytest.raises(MappingError, match=rf"{path}:4: priorities\.codes\.紧急: Input should be"):
            load_oa_mapping(path)

    def test_tabular_key_is_refused(self, tmp_path: Path) -> None:
        """A CSV/XLSX-only key (sheet) in an OA mapping is refused as a mistake."""
        path = write(tmp_path, "extends: default\nsheet: Sheet1\n")
        with pytest.raises(MappingError, match=rf"{path}:2: sheet: 'sheet' applies to CSV/XLSX exports"):
            load_oa_mapping(path)

    def test_default_approval_result_is_refused(self, tmp_path: Path) -> None:
        """A default for blank approval results (inventing a decision) is refused."""
        path = write(tmp_path, "extends: default\napproval_results:\n  default: approved\n")
        with pytest.raises(MappingError, match=rf"{path}:3: approval_results\.default: must not be set"):
            load_oa_mapping(path)

    def test_identifier_field_without_names(self, tmp_path: Path) -> None:
        """An asset identifier field that no column names is refused at its line."""
        text = "extends: default\nasset_identifiers:\n  - {field: colour, scheme: oa.no}\n"
        path = write(tmp_path, text)
        with pytest.raises(
            MappingError, match=rf"{path}:3: asset_identifiers\[0\]\.field: unknown field 'colour'"
        ):
            load_oa_mapping(path)

    def test_limits_must_be_positive(self, tmp_path: Path) -> None:
        """A zero size limit is refused at its line."""
        path = write(tmp_path, "extends: default\nlimits:\n  max_bytes: 0\n")
        with pytest.raises(MappingError, match=rf"{path}:3: limits\.max_bytes"):
            load_oa_mapping(path)
