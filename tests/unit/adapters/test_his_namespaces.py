"""HL7 identifiers resolved through the mapping's `namespaces:` table, and the OBX-18 equipment rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MappingError
from adapters.his.batch import split_text
from adapters.his.decode import decode
from adapters.his.identifiers import EntityId, equipment_in_obx, eui64, resolve
from adapters.his.mapping import HisMapping, default_mapping, load_his_mapping
from adapters.his.tokenize import tokenise
from schemas._base import Identifier
from schemas.assets import AssetStatusChanged, AssetUsed
from schemas.ids import asset_id_for
from tests.unit.adapters.test_his_samples import hl7, mapping, run

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus" / "hl7v2"
MSH_ESU = "MSH|^~\\&|GW|ICU|HUB|H|20240701101500||ESU^U01^ESU_U01|{id}|P|2.5"
MSH_ORU = "MSH|^~\\&|LAB|LAB|HUB|H|20240701101500||ORU^R01^ORU_R01|{id}|P|2.5"


def ident(scheme: str, value: str) -> Identifier:
    return Identifier(scheme=scheme, value=value)


def esu(equ1: str) -> AssetStatusChanged:
    result = run(hl7(MSH_ESU.format(id="E1"), f"EQU|{equ1}|20240701101455|ES^E-stopped^HL70365"))
    assert not result.failures, result.failures
    (emitted,) = result.events
    assert isinstance(emitted.event, AssetStatusChanged)
    return emitted.event


def oru(*obx18: str, m: HisMapping | None = None) -> tuple[list[AssetUsed], tuple[str, ...]]:
    lines = [MSH_ORU.format(id="O1"), "OBR|1||LAB-1|GLU^Glucose"]
    lines += [
        f"OBX|{i}|NM|GLU^Glucose||5.4|mmol/L|||||F|||20240701100000||||{v}" for i, v in enumerate(obx18, 1)
    ]
    result = run(hl7(*lines), m)
    assert not result.failures, result.failures
    return [e.event for e in result.events], result.skipped  # type: ignore[misc]


class TestNamespaceTable:
    def test_defaults(self) -> None:
        """HRP is the HRP card, HIS the HIS code, SPD/OA their codes, the UDI agencies UDI."""
        m = default_mapping()
        assert [m.namespace_scheme(k) for k in ("HRP", "hrp", " HIS ", "SPD", "OA", "2.51.1.1", "XYZ")] == [
            "hrp.card", "hrp.card", "his.code", "spd.code", "oa.no", "udi", None,
        ]  # fmt: skip

    def test_equ_with_hrp_namespace_lands_on_the_card(self) -> None:
        """`ZC2019007^HRP` in EQU-1 is the HRP card: the subject the HRP ledger mints for it."""
        assert esu("ZC2019007^HRP").subject == asset_id_for(ident("hrp.card", "ZC2019007"))

    def test_bare_and_his_namespaced_equ_stay_his_codes(self) -> None:
        """No namespace or `HIS`: the HIS code, as before the table existed."""
        his = asset_id_for(ident("his.code", "VENT-0032"))
        assert esu("VENT-0032").subject == his
        assert esu("VENT-0032^HIS^^L").subject == his

    def test_unknown_namespace_is_kept_qualified(self) -> None:
        """A namespace the table does not list never meets another system's equal number."""
        assert esu("0042^ACME").subject == asset_id_for(ident("ns", "ACME|0042"))
        assert esu("0042^ACME").subject != esu("0042^OTHER").subject

    def test_universal_id_and_type_are_looked_up(self) -> None:
        """An OID in EI-3 (or a type in EI-4) the site lists names the scheme."""
        m = HisMapping.model_validate({"namespaces": {"1.2.156.112604.1.2": "hrp.card"}})
        assert resolve(m, EntityId("ZC-1", "", "1.2.156.112604.1.2", "ISO"), "his.code") == ident(
            "hrp.card", "ZC-1"
        )

    def test_eui64_by_label(self) -> None:
        """IHE PCD style: `^^<EUI-64>^EUI-64` (or the namespace EUI-64) is an eui64, upper case."""
        m = default_mapping()
        assert resolve(m, EntityId("", "", "0012ab34cd56ef78", "EUI-64"), "his.code") == ident(
            "eui64", "0012AB34CD56EF78"
        )
        assert resolve(m, EntityId("00-12-AB-34-CD-56-EF-78", "EUI-64"), "his.code") == ident(
            "eui64", "0012AB34CD56EF78"
        )

    def test_site_extends_the_table(self, tmp_path: Path) -> None:
        """`extends: default` adds entries to the table; a site may re-point one."""
        path = tmp_path / "his.yaml"
        path.write_text("extends: default\nnamespaces:\n  ZCK: hrp.card\n  HIS: oa.no\n", encoding="utf-8")
        m = load_his_mapping(path)
        assert (m.namespace_scheme("ZCK"), m.namespace_scheme("HRP"), m.namespace_scheme("HIS")) == (
            "hrp.card", "hrp.card", "oa.no",
        )  # fmt: skip

    def test_bad_scheme_and_pattern_are_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "his.yaml"
        path.write_text("extends: default\nnamespaces:\n  ZCK: HRP Card\n", encoding="utf-8")
        with pytest.raises(MappingError, match="namespaces"):
            load_his_mapping(path)
        path.write_text("extends: default\ndevices:\n  equipment_patterns: ['(']\n", encoding="utf-8")
        with pytest.raises(MappingError, match="equipment_patterns"):
            load_his_mapping(path)

    @settings(max_examples=60, deadline=None)
    @given(
        value=st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,14}", fullmatch=True),
        namespace=st.sampled_from(["HRP", "hrp", "HIS", "SPD", "OA", "ACME", ""]),
    )
    def test_resolution_is_the_table(self, value: str, namespace: str) -> None:
        """Property: a listed namespace gives its scheme and the bare value; an unlisted one `ns`;
        none the default scheme. The value never changes but by qualification."""
        m = default_mapping()
        got = resolve(m, EntityId(value, namespace), "his.code")
        listed = m.namespace_scheme(namespace) if namespace else None
        if listed:
            assert got == ident(listed, value)
        elif namespace:
            assert got == ident("ns", f"{namespace}|{value}")
        else:
            assert got == ident("his.code", value)


class TestObx18:
    def test_reference_range_limits_are_not_devices(self) -> None:
        """An analyser's limits in OBX-18 (3, 1, 5) make no device; the skip says why."""
        used, skipped = oru("3", "1", "5")
        assert used == []
        assert any("3 OBX-18 value(s) not taken as equipment" in s for s in skipped)

    def test_equipment_by_namespace_eui64_or_pattern(self) -> None:
        """A known namespace, an EUI-64 (labelled or bare) and a coded name are devices."""
        used, _ = oru("ZC-1^HRP", "^^0012AB34CD56EF78^EUI-64", "00:12:ab:34:cd:56:ef:79", "CT-02", "42")
        assert [u.subject for u in used] == [
            asset_id_for(ident("hrp.card", "ZC-1")),
            asset_id_for(ident("eui64", "0012AB34CD56EF78")),
            asset_id_for(ident("eui64", "0012AB34CD56EF79")),
            asset_id_for(ident("his.code", "CT-02")),
        ]

    def test_a_site_pattern_takes_numeric_asset_tags(self) -> None:
        """A site whose devices are numbered lists a pattern: 6-digit tags are devices, 3 is not."""
        m = mapping(HisMapping.model_validate({"devices": {"equipment_patterns": [r"\d{6}"]}}))
        used, _ = oru("104233", "3", m=m)
        assert [u.subject for u in used] == [asset_id_for(ident("his.code", "104233"))]

    @settings(max_examples=80, deadline=None)
    @given(st.integers(min_value=0, max_value=10**15))
    def test_a_bare_number_is_never_a_device_by_default(self, number: int) -> None:
        """Property: no bare number (up to 16 digits) in OBX-18 is equipment under the default mapping."""
        assert equipment_in_obx(default_mapping(), EntityId(str(number))) is None

    def test_eui64_shape(self) -> None:
        assert eui64("00-12-ab-34-cd-56-ef-78") == "0012AB34CD56EF78"
        assert eui64("0012AB34CD56EF7") is None
        assert eui64("ZZ12AB34CD56EF78") is None


@pytest.mark.skipif(not CORPUS.is_dir(), reason="third-party HL7 corpus absent")
def test_corpus_obx18_values_follow_the_rule() -> None:
    """Every OBX-18 in the third-party corpus: only equipment-looking values would be devices.

    The corpus's OBX-18 values are document line numbers (MDM^T04: 4, 11, 16...): none is one.
    """
    m = default_mapping()
    seen: list[tuple[str, str, bool]] = []
    for path in sorted(CORPUS.glob("*.hl7")):
        text = decode(path.read_bytes(), None).text
        for message_text in split_text(text):
            try:
                message = tokenise(message_text, strict=False)
            except Exception:  # noqa: S112 - malformed corpus files are the corpus test's business
                continue
            for obx in message.segments("OBX"):
                for rep in range(obx.repetitions(18)):
                    ei = EntityId.read(obx, 18, rep)
                    if ei.value or ei.universal_id:
                        seen.append((path.name, ei.value, equipment_in_obx(m, ei) is not None))
    assert seen, "the corpus has OBX-18 values to check"
    assert [s for s in seen if s[2]] == []


def test_charge_keeps_the_item_code_and_text() -> None:
    """DFT^P03 FT1-7 `HC0302^药物洗脱支架`: code and text travel on inventory.consumed."""
    from tests.unit.adapters.test_his_samples import sample

    payloads = [e.event.payload for e in run(sample("01_dft_p03_ptca_prt_utf8.hl7")).events]
    assert [(p.item_code, p.item_name) for p in payloads] == [  # type: ignore[attr-defined]
        ("HC0301", "冠脉球囊扩张导管"),
        ("HC0302", "药物洗脱支架"),
    ]
