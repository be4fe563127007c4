"""Mapping files: validated on load, every error naming the file, the line and the key."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from adapters._files.mapping_loader import MappingValidationError
from adapters.errors import MappingError
from adapters.hrp.mapping import DEFAULT_MAPPING, load_hrp_mapping

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL = """\
columns:
  card_no: [资产编号]
  name: [资产名称]
required: [card_no, name]
"""


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestLoading:
    def test_default_mapping_loads_with_content_hash_version(self) -> None:
        """The bundled mapping validates; its version is the first 12 hex of its sha256."""
        mapping = load_hrp_mapping(DEFAULT_MAPPING)
        assert mapping.version == hashlib.sha256(DEFAULT_MAPPING.read_bytes()).hexdigest()[:12]
        assert mapping.source == str(DEFAULT_MAPPING)

    def test_minimal_mapping_gets_defaults(self, tmp_path: Path) -> None:
        """Only columns are needed; everything else has a documented default."""
        mapping = load_hrp_mapping(write(tmp_path, MINIMAL))
        assert (mapping.encoding, mapping.header.scan_rows, mapping.summary_markers) == (
            "auto",
            15,
            ["合计", "小计", "总计"],
        )

    def test_unknown_key_names_line_and_key(self, tmp_path: Path) -> None:
        """A misspelt top-level key is refused at its line."""
        path = write(tmp_path, MINIMAL + "date_format: ['%d.%m.%Y']\n")
        with pytest.raises(MappingError, match=rf"{path}:5: date_format: Extra inputs are not permitted"):
            load_hrp_mapping(path)

    def test_bad_status_value_names_its_line(self, tmp_path: Path) -> None:
        """A status mapped to a value outside AssetStatus is refused at that entry's line."""
        path = write(tmp_path, MINIMAL + "statuses:\n  在用: in_use\n  坏了: broken\n")
        with pytest.raises(MappingError, match=rf"{path}:7: statuses.坏了: Input should be 'in_use'"):
            load_hrp_mapping(path)

    def test_unquoted_numeric_code_suggests_quoting(self, tmp_path: Path) -> None:
        """A department code YAML reads as a number (0301) is refused with advice to quote it."""
        path = write(tmp_path, MINIMAL + "departments:\n  - code: 0301\n    name: 检验科\n")
        with pytest.raises(MappingError, match=rf"{path}:6: departments\[0\].code: .*quote it"):
            load_hrp_mapping(path)

    def test_every_problem_is_listed(self, tmp_path: Path) -> None:
        """Several errors are reported together, each with its own line."""
        path = write(tmp_path, MINIMAL + "encoding: latin1\nheader:\n  scan_rows: 0\n")
        with pytest.raises(MappingValidationError) as caught:
            load_hrp_mapping(path)
        assert [p.split(": ")[0] for p in caught.value.problems] == [f"{path}:5", f"{path}:7"]
        assert "2 problems" in str(caught.value)

    def test_duplicate_key_is_refused(self, tmp_path: Path) -> None:
        """A key given twice (which YAML would silently resolve) is refused at the second one."""
        path = write(tmp_path, MINIMAL + "statuses:\n  在用: in_use\n  在用: idle\n")
        with pytest.raises(MappingError, match=rf"{path}:7: key '在用' repeats the one on line 6"):
            load_hrp_mapping(path)

    def test_yaml_syntax_error_names_line(self, tmp_path: Path) -> None:
        """Broken YAML is reported with the line of the problem."""
        path = write(tmp_path, MINIMAL + "statuses: [unclosed\n")
        with pytest.raises(MappingError, match=rf"{path}:6: not valid YAML"):
            load_hrp_mapping(path)

    def test_not_a_mapping(self, tmp_path: Path) -> None:
        """A YAML list at top level is refused."""
        with pytest.raises(MappingError, match="must be a YAML mapping"):
            load_hrp_mapping(write(tmp_path, "- a\n- b\n"))

    def test_non_utf8_file(self, tmp_path: Path) -> None:
        """A mapping saved in GBK is refused with the byte offset, not misread."""
        path = tmp_path / "gbk.yaml"
        path.write_bytes(MINIMAL.encode("gbk"))
        with pytest.raises(MappingError, match="mapping files are UTF-8; byte offset"):
            load_hrp_mapping(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist is a MappingError naming it."""
        with pytest.raises(MappingError, match="cannot read the mapping file"):
            load_hrp_mapping(tmp_path / "nope.yaml")


class TestSemanticChecks:
    def test_unknown_field_under_columns(self, tmp_path: Path) -> None:
        """A canonical field the HRP adapter does not know is refused at its key."""
        path = write(tmp_path, MINIMAL.replace("required:", "  colour: [颜色]\nrequired:"))
        with pytest.raises(MappingError, match=rf"{path}:4: columns.colour: unknown field 'colour'"):
            load_hrp_mapping(path)

    def test_required_without_column(self, tmp_path: Path) -> None:
        """A required field missing from columns is refused at its list item."""
        path = write(tmp_path, "columns:\n  card_no: [资产编号]\nrequired:\n  - card_no\n  - name\n")
        with pytest.raises(
            MappingError, match=rf"{path}:5: required\[1\]: required field 'name' has no entry"
        ):
            load_hrp_mapping(path)

    def test_card_number_must_be_required(self, tmp_path: Path) -> None:
        """The asset key cannot be optional."""
        path = write(tmp_path, "columns:\n  card_no: [资产编号]\n  name: [资产名称]\nrequired: [name]\n")
        with pytest.raises(MappingError, match=rf"{path}:4: required: must include card_no"):
            load_hrp_mapping(path)

    def test_synonym_under_two_fields(self, tmp_path: Path) -> None:
        """One column title listed under two fields is refused at the second listing."""
        path = write(tmp_path, MINIMAL.replace("name: [资产名称]", "name: [资产名称, 资产编号]"))
        with pytest.raises(
            MappingError, match=rf"{path}:3: columns.name\[1\]: synonym '资产编号' is also listed"
        ):
            load_hrp_mapping(path)

    def test_date_format_without_a_day(self, tmp_path: Path) -> None:
        """A date format that cannot hold a full date is refused at its list item."""
        path = write(tmp_path, MINIMAL + "date_formats:\n  - '%d.%m.%Y'\n  - '%Y-%m'\n")
        with pytest.raises(
            MappingError, match=rf"{path}:7: date_formats\[1\]: date format '%Y-%m' does not hold"
        ):
            load_hrp_mapping(path)

    def test_department_alias_claimed_twice(self, tmp_path: Path) -> None:
        """An alias naming two departments is refused at the second claim."""
        path = write(
            tmp_path,
            MINIMAL + "departments:\n  - {code: '01', name: 急诊科, aliases: [抢救室]}\n"
            "  - {code: '02', name: 重症医学科, aliases: [ICU, 抢救室]}\n",
        )
        with pytest.raises(
            MappingError, match=rf"{path}:7: departments\[1\].aliases\[1\]: '抢救室' already names"
        ):
            load_hrp_mapping(path)


class TestExtends:
    def test_site_file_builds_on_the_default(self, tmp_path: Path) -> None:
        """`extends: default` keeps the default's columns and adds the site's formats."""
        path = write(tmp_path, "extends: default\ndate_formats: ['%d.%m.%Y']\nstrict_departments: true\n")
        mapping = load_hrp_mapping(path)
        assert mapping.date_formats == ["%d.%m.%Y"]
        assert mapping.strict_departments
        assert "资产卡片号" in mapping.columns["card_no"]
        expected = hashlib.sha256(path.read_bytes() + DEFAULT_MAPPING.read_bytes()).hexdigest()[:12]
        assert mapping.version == expected

    def test_nested_mappings_merge_key_by_key(self, tmp_path: Path) -> None:
        """Overriding one column's synonyms leaves the other columns from the base."""
        path = write(tmp_path, "extends: default\ncolumns:\n  card_no: [卡号]\n")
        mapping = load_hrp_mapping(path)
        assert mapping.columns["card_no"] == ["卡号"]
        assert "资产名称" in mapping.columns["name"]

    def test_error_in_site_file_names_the_site_file(self, tmp_path: Path) -> None:
        """A bad value in the extending file is reported against that file and line."""
        path = write(tmp_path, "extends: default\n\nstatuses:\n  坏了: broken\n")
        with pytest.raises(MappingError, match=rf"{path}:4: statuses.坏了"):
            load_hrp_mapping(path)

    def test_relative_extends_and_cycles(self, tmp_path: Path) -> None:
        """A file may extend a sibling; a cycle is refused."""
        write(tmp_path, "extends: b.yaml\n", name="a.yaml")
        write(tmp_path, "extends: a.yaml\n", name="b.yaml")
        with pytest.raises(MappingError, match="forms a cycle"):
            load_hrp_mapping(tmp_path / "a.yaml")
