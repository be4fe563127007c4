"""The HIS mapping: validation with file:line errors, code maps, the patient secret."""

from __future__ import annotations

import pytest

from adapters.errors import MappingError
from adapters.his import ADAPTER
from adapters.his.mapping import ChargeRules, FieldRef, HisMapping, default_mapping, load_his_mapping
from schemas._base import DeptRef, LocationRef
from schemas.assets import AssetStatus


def write(tmp_path, text: str):
    path = tmp_path / "his.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestLoading:
    def test_bundled_mapping_loads_and_is_versioned(self):
        """The default mapping validates and carries a content hash as version."""
        mapping = default_mapping()
        assert len(mapping.version) == 12
        assert mapping.strict_codes is None
        assert mapping.strict == ["equipment_state"]
        assert (mapping.is_strict("department"), mapping.is_strict("equipment_state")) == (False, True)
        assert mapping.charset_doubt == "reject"
        assert ADAPTER.load_mapping(ADAPTER.default_mapping).version == mapping.version

    def test_extends_default_overrides_only_what_it_names(self, tmp_path):
        """A site file with `extends: default` changes one rule and keeps the rest."""
        path = write(tmp_path, "extends: default\nstrict_codes: false\ncharges:\n  udi_field: FT1-29\n")
        mapping = load_his_mapping(path)
        assert mapping.strict_codes is False
        assert mapping.charges.udi_field == "FT1-29"
        assert mapping.charges.transaction_types == ["CG"]
        assert mapping.place("ICU-A") == LocationRef(
            department=DeptRef(code="0101", name="重症医学科"), location="ICU A区"
        )

    @pytest.mark.parametrize(
        ("text", "line", "key"),
        [
            ("strict_codes: true\nequipment_states:\n  OP: running\n", 3, "equipment_states.OP"),
            ("charges:\n  udi_field: FT1_29\n", 2, "charges.udi_field"),
            ("strict_codes: true\nno_such_key: 1\n", 2, "no_such_key"),
            ("item_master:\n  minimum: IVT24\n", 2, "item_master.minimum"),
        ],
    )
    def test_shape_errors_name_file_line_and_key(self, tmp_path, text, line, key):
        """A bad value is reported as `file:line: key: message`."""
        path = write(tmp_path, text)
        with pytest.raises(MappingError) as info:
            load_his_mapping(path)
        assert f"{path}:{line}: {key}:" in str(info.value)

    def test_unknown_encoding_is_a_problem_on_its_line(self, tmp_path):
        """An encoding the hub cannot decode is refused at load, naming the line."""
        path = write(tmp_path, "strict_codes: true\nencoding: klingon\n")
        with pytest.raises(MappingError, match=rf"{path}:2: encoding: 'klingon' is not a character set"):
            load_his_mapping(path)

    def test_location_pointing_at_an_unknown_department_is_refused(self, tmp_path):
        """A `locations` entry must name a department from `departments`."""
        text = "departments:\n  - {code: '01', name: ICU}\nlocations:\n  W1: {department: '99'}\n"
        path = write(tmp_path, text)
        with pytest.raises(MappingError, match=rf"{path}:4: locations.W1.department: department '99'"):
            load_his_mapping(path)

    def test_department_alias_claimed_twice_is_refused(self, tmp_path):
        """Two departments cannot share an alias."""
        text = "departments:\n  - {code: '01', name: ICU}\n  - {code: '02', name: CCU, aliases: [ICU]}\n"
        path = write(tmp_path, text)
        with pytest.raises(MappingError, match="already names department 01"):
            load_his_mapping(path)

    def test_bare_off_is_refused_not_read_as_false(self, tmp_path):
        """YAML 1.1 reads a bare OFF key as false: the mapping is refused instead of mapping `False`."""
        path = write(tmp_path, "equipment_states:\n  OFF: idle\n")
        with pytest.raises(MappingError, match=rf"{path}:\d+: equipment_states"):
            load_his_mapping(path)


class TestLookups:
    def test_place_by_location_code_department_code_name_and_alias(self):
        """Location codes, department codes, names and aliases all resolve; unknown is None when strict."""
        mapping = default_mapping()
        assert mapping.place("or-east") == LocationRef(
            department=DeptRef(code="0204", name="东区手术室"), location="东区手术室"
        )
        assert mapping.place("0201") == LocationRef(department=DeptRef(code="0201", name="心血管内科"))
        assert mapping.place("", "心内科") == LocationRef(department=DeptRef(code="0201", name="心血管内科"))
        assert mapping.place("", "東區手術室") == LocationRef(
            department=DeptRef(code="0204", name="东区手术室")
        )
        assert mapping.place("NOPE", "无此科室") is None

    def test_place_passes_unknown_codes_through_when_not_strict(self):
        """With strict_codes off the source's code and text are kept."""
        mapping = default_mapping().model_copy(update={"strict_codes": False})
        assert mapping.place("W9", "九病区") == LocationRef(department=DeptRef(code="W9", name="九病区"))

    def test_equipment_states_are_case_insensitive(self):
        """`op` and `OP` are the same state code."""
        assert default_mapping().equipment_state("op") is AssetStatus.IN_USE
        assert default_mapping().equipment_state("zz") is None

    def test_consumable_code_prefixes(self):
        """`HC*` matches by prefix; other entries match exactly."""
        rules = ChargeRules(consumable_codes=["HC*", "X1"])
        assert rules.is_listed("HC0301")
        assert rules.is_listed("X1")
        assert not rules.is_listed("X12")
        assert not rules.is_listed("SV1")

    def test_field_references_parse(self):
        """`ITM-13.1.1` is segment ITM, field 13, component 1, subcomponent 1."""
        assert FieldRef.parse("ITM-13.1.1") == FieldRef("ITM", 13, 1, 1)
        assert str(FieldRef.parse("ZFT-3")) == "ZFT-3"


class TestSecret:
    def test_with_secret_returns_a_copy(self):
        """The loaded mapping keeps no secret; the copy has it and the same version."""
        base = default_mapping()
        keyed = base.with_secret(b"0123456789abcdef")
        assert base.patient_secret is None
        assert keyed.patient_secret == b"0123456789abcdef"
        assert keyed.version == base.version
        assert "0123456789abcdef" not in repr(keyed)

    def test_in_memory_mapping_validates_like_a_file(self):
        """A mapping built in code obeys the same model (unknown keys are refused)."""
        with pytest.raises(ValueError, match="extra"):
            HisMapping.model_validate({"nonsense": 1})
