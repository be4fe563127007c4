"""The bundled SPD mapping and what validation refuses in a site's mapping, line by line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters._files.header import match_header, synonym_index
from adapters.errors import MappingError
from adapters.spd.mapping import KINDS, SPD_FIELDS, default_mapping, load_spd_mapping

if TYPE_CHECKING:
    from pathlib import Path


def site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestDefaultMapping:
    def test_every_field_has_columns_and_every_kind_a_rule(self) -> None:
        """The bundled mapping names columns for every SPD field and a rule for every document kind."""
        mapping = default_mapping()
        assert set(mapping.columns) == SPD_FIELDS
        assert set(mapping.documents) == set(KINDS)

    @pytest.mark.parametrize(
        ("title", "field"),
        [
            ("物资编码", "item_code"),
            ("UDI-DI(产品标识)", "udi_di"),
            ("商品条码(GTIN)", "gtin"),
            ("高值耗材", "high_value"),
            ("库房/科室", "department"),
            ("最低库存", "minimum"),
            ("实盘数量", "counted_quantity"),
            ("报损原因", "disposal_reason"),
            ("扫码时间", "consumed_at"),
            ("单价(元)", "unit_price"),
        ],
    )
    def test_common_titles_map_to_fields(self, title: str, field: str) -> None:
        """Each common SPD column title maps to its canonical field."""
        assert match_header([title], synonym_index(default_mapping().columns)) == {field: 0}

    def test_central_store_is_a_department(self) -> None:
        """The default store is in the department list, with its aliases."""
        mapping = default_mapping()
        assert mapping.default_store == "中心库房"
        entry = mapping.department("一级库")
        assert entry is not None
        assert (entry.code, entry.name) == ("9001", "中心库房")

    def test_departments_are_strict(self) -> None:
        """Stock must sit somewhere known: unknown departments fail by default."""
        assert default_mapping().strict_departments is True


class TestSiteMappings:
    def test_extends_default_and_overrides_one_kind(self, tmp_path: Path) -> None:
        """A site file adds a file pattern to one kind and keeps the rest of the defaults."""
        mapping = load_spd_mapping(
            site(tmp_path, "extends: default\ndocuments:\n  receipt:\n    file_patterns: ['*入库*']\n")
        )
        assert mapping.documents["receipt"].file_patterns == ["*入库*"]
        assert mapping.documents["receipt"].signature == ["item_code", "quantity", "received_on"]
        assert mapping.documents["stocktake"] == default_mapping().documents["stocktake"]

    def test_unknown_kind_names_its_line(self, tmp_path: Path) -> None:
        """A document kind the adapter does not have is refused at its line."""
        path = site(tmp_path, "extends: default\ndocuments:\n  invoice:\n    signature: [item_code]\n")
        with pytest.raises(
            MappingError, match=rf"{path}:3: documents.invoice: unknown document kind 'invoice'"
        ):
            load_spd_mapping(path)

    def test_type_word_claimed_twice_is_refused(self, tmp_path: Path) -> None:
        """One 单据类型 word cannot select two kinds."""
        path = site(tmp_path, "extends: default\ndocuments:\n  disposal:\n    type_values: [入库]\n")
        with pytest.raises(MappingError, match=r"'入库' already selects 'receipt'"):
            load_spd_mapping(path)

    def test_signature_field_must_exist(self, tmp_path: Path) -> None:
        """A signature naming an unknown field is refused at its line."""
        path = site(tmp_path, "extends: default\ndocuments:\n  receipt:\n    signature: [colour]\n")
        with pytest.raises(MappingError, match=rf"{path}:4: documents.receipt.signature\[0\]: unknown field"):
            load_spd_mapping(path)

    def test_default_store_must_be_a_department(self, tmp_path: Path) -> None:
        """A default store missing from the department list is refused."""
        path = site(tmp_path, "extends: default\ndefault_store: 二号库\n")
        with pytest.raises(MappingError, match=rf"{path}:2: default_store: '二号库' is not in departments"):
            load_spd_mapping(path)

    def test_item_code_must_stay_required(self, tmp_path: Path) -> None:
        """Every SPD row is keyed by its item code: a mapping may not make it optional."""
        path = site(tmp_path, "extends: default\nrequired: []\n")
        with pytest.raises(MappingError, match="must include item_code"):
            load_spd_mapping(path)

    def test_disposal_reason_must_be_canonical(self, tmp_path: Path) -> None:
        """A disposal word mapped to something other than expired/damaged/recalled/other is refused."""
        path = site(tmp_path, "extends: default\ndisposal_reasons:\n  丢失: lost\n")
        with pytest.raises(MappingError, match=rf"{path}:3: disposal_reasons.丢失"):
            load_spd_mapping(path)
