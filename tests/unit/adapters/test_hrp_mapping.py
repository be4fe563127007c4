"""The bundled HRP mapping: synonyms, department code map and status words."""

from __future__ import annotations

import pytest

from adapters._files.header import match_header, synonym_index
from adapters.hrp.mapping import HRP_FIELDS, default_mapping
from schemas.assets import AssetStatus


class TestDefaultMapping:
    @pytest.mark.parametrize(
        ("title", "field"),
        [
            ("资产编号", "card_no"),
            ("资产卡片号", "card_no"),
            ("卡片编号", "card_no"),
            ("固定资产编号", "card_no"),
            ("设备名称", "name"),
            ("型号", "model"),
            ("制造商", "manufacturer"),
            ("设备序列号", "serial_number"),
            ("使用部门", "department"),
            ("安装地点", "location"),
            ("入账日期", "acquired_on"),
            ("原值(元)", "original_value"),
            ("累计折旧", "accumulated_depreciation"),
            ("净值", "net_value"),
            ("使用状态", "status"),
            ("68分类码", "category"),
            ("资金来源", "funding_source"),
            ("折旧年限", "useful_life_years"),
            ("医疗器械唯一标识", "udi"),
        ],
    )
    def test_common_titles_map_to_fields(self, title: str, field: str) -> None:
        """Each common ledger column title maps to its canonical field."""
        assert match_header([title], synonym_index(default_mapping().columns)) == {field: 0}

    def test_columns_cover_every_field(self) -> None:
        """The default mapping names a column for every field the adapter knows."""
        assert set(default_mapping().columns) == HRP_FIELDS

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("重症医学科", "0101"),
            ("重症医学科(ICU)", "0101"),
            ("ICU", "0101"),
            ("icu", "0101"),
            ("0302", "0302"),
            ("血透室", "0501"),
            ("设备科", "0901"),
        ],
    )
    def test_departments_by_name_code_or_alias(self, text: str, code: str) -> None:
        """A department is found by its name, code or alias, ignoring case, width and a bracketed note."""
        entry = default_mapping().department(text)
        assert entry is not None
        assert entry.code == code

    def test_unknown_department_is_none(self) -> None:
        """A department not in the list is not guessed."""
        assert default_mapping().department("康复医学科") is None

    @pytest.mark.parametrize(
        ("text", "status"),
        [
            ("在用", AssetStatus.IN_USE),
            ("闲置", AssetStatus.IDLE),
            ("维修", AssetStatus.UNDER_REPAIR),
            ("待修", AssetStatus.UNDER_REPAIR),
            ("报废", AssetStatus.SCRAPPED),
            ("封存", AssetStatus.SEALED),
            ("借出", AssetStatus.ON_LOAN),
        ],
    )
    def test_status_words(self, text: str, status: AssetStatus) -> None:
        """Ledger status words map to the harmonised statuses."""
        assert default_mapping().status(text) == status

    def test_departments_are_lenient_by_default(self) -> None:
        """strict_departments is off unless a site turns it on."""
        assert default_mapping().strict_departments is False
