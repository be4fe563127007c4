"""Field accounting for HL7 v2 (HIS) and FHIR: every non-empty field of a message (element of a
resource) is claimed by the translator, declared ignored, or reported as unclaimed, and the
corpus walk over every bundled example and the shared public corpus finds nothing unclaimed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.errors import MappingError
from adapters.fhir import ADAPTER as FHIR
from adapters.fhir.mapping import load_fhir_mapping
from adapters.his import ADAPTER as HIS
from adapters.his.decode import decode
from adapters.his.mapping import HisMapping, default_mapping, load_his_mapping
from hub.cli import app
from hub.translation.safe import run_translator
from tests.unit.adapters import _fhir
from tests.unit.adapters.test_his_samples import context, hl7, mapping, raw_for, run

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "corpus"
HL7_CORPUS = [
    *sorted((ROOT / "examples" / "his").glob("*.hl7")),
    *sorted((SHARED / "hl7v2").glob("*.hl7")),
]
FHIR_CORPUS = [
    *sorted(p for p in (ROOT / "examples" / "fhir").iterdir() if p.suffix in {".json", ".xml"}),
    *sorted(p for p in (SHARED / "fhir").iterdir() if p.suffix in {".json", ".xml"}),
]
MSH = "MSH|^~\\&|HIS|XXRMYY|HUB|XXRMYY|20240616100000||{type}|{id}|P|2.5|||||CHN|UNICODE UTF-8"
PID = "PID|1||MR7^^^XXRMYY^MR||某人^MOU REN||19700101|M"
PV1 = "PV1|1|I|ICU^01^01"
FT1 = "FT1|1|CHG-1||20240616093000||CG|HC0301^冠脉球囊扩张导管^LOCAL|||1|2680.00|2680.00|0101^重症医学科"
PRT = "PRT|1|AD||EQUIP^Equipment^HL70912||||||(01)06938123450010(17)271231(10)LOT2024A(21)SN0009^^GS1"
ZVD = "ZVD|供应商A|合同HT-2024-017"  # a vendor's own segment the mapping does not know


def _non_empty_fields(payload: bytes) -> int:
    """Counted without the translator: distinct non-empty SEG-n per message, MSH-1/2 aside."""
    text = decode(payload).text
    total, seen = 0, set[str]()
    for line in re.split(r"[\r\n]+", text.lstrip("\ufeff")):
        sid = line[:3]
        if not line.strip() or sid in {"FHS", "BHS", "BTS", "FTS"}:
            continue
        if sid == "MSH":
            total, seen = total + len(seen), set()
        parts = line.split("|")
        first = 2 if sid == "MSH" else 1  # MSH-3 is parts[2]: MSH-1 is the separator itself
        for i, value in enumerate(parts[first:], start=first):
            n = i + 1 if sid == "MSH" else i
            if value.strip() and value.strip() != '""':
                seen.add(f"{sid}-{n}")
    return total + len(seen)


@pytest.mark.parametrize("path", HL7_CORPUS, ids=lambda p: p.name)
def test_every_non_empty_hl7_field_of_the_corpus_is_claimed_or_ignored(path: Path) -> None:
    """The corpus walk for HIS: examples/his and ../shared/corpus/hl7v2 under the bundled mapping."""
    payload = path.read_bytes()
    chosen = mapping()
    result = run_translator(HIS, raw_for(payload, message_id=path.name), payload, chosen, context(chosen))
    accounting = result.accounting
    if accounting is None:  # unreadable as a whole (no MSH, a line break inside a field...)
        assert [f.position for f in result.failures] == ["message"]
        return
    assert accounting.unclaimed == {}, f"{path.name}: unclaimed {accounting.unclaimed}"
    assert accounting.cells == _non_empty_fields(payload)
    if result.events:
        assert sum(accounting.claimed.values()) > 0


@pytest.mark.parametrize("path", FHIR_CORPUS, ids=lambda p: p.name)
def test_every_non_empty_fhir_element_of_the_corpus_is_claimed_or_ignored(path: Path) -> None:
    """The corpus walk for FHIR: examples/fhir and ../shared/corpus/fhir under the bundled mapping."""
    content_type = "application/fhir+xml" if path.suffix == ".xml" else None
    result = run_translator(
        FHIR,
        _fhir.raw_record(path.stem, content_type=content_type),
        path.read_bytes(),
        _fhir.mapping(),
        _fhir.context(),
    )
    accounting = result.accounting
    if accounting is None:
        assert [f.position for f in result.failures] == ["message"]
        return
    assert accounting.unclaimed == {}, f"{path.name}: unclaimed {accounting.unclaimed}"
    if result.events:
        assert sum(accounting.claimed.values()) > 0


class TestHl7:
    def test_an_extra_z_segment_is_unclaimed_with_samples_and_the_events_unchanged(self) -> None:
        plain = run(hl7(MSH.format(type="DFT^P03", id="A1"), PID, PV1, FT1, PRT))
        extra = run(hl7(MSH.format(type="DFT^P03", id="A1"), PID, PV1, FT1, PRT, ZVD))
        assert [e.event for e in extra.events] == [e.event for e in plain.events]
        accounting = extra.accounting
        assert accounting is not None
        assert accounting.unclaimed == {"ZVD-1": 1, "ZVD-2": 1}
        assert accounting.samples["ZVD-2"] == ("合同HT-2024-017",)

    def test_what_the_translator_read_is_claimed_and_housekeeping_and_patient_are_ignored(self) -> None:
        result = run(hl7(MSH.format(type="DFT^P03", id="A2"), PID, PV1, FT1, PRT))
        accounting = result.accounting
        assert accounting is not None
        assert {"FT1-7", "FT1-10", "FT1-13", "PRT-10", "MSH-9", "PID-3"} <= set(accounting.claimed)
        assert {"MSH-3", "MSH-18", "PID-5", "PID-7", "PV1-2"} <= set(accounting.ignored)
        assert accounting.unclaimed == {}
        # No patient value is ever a sample.
        assert not any("MOU" in s for samples in accounting.samples.values() for s in samples)

    def test_counts_are_per_message_so_fill_never_passes_all(self) -> None:
        two = FT1.replace("FT1|1|CHG-1", "FT1|2|CHG-2")
        result = run(hl7(MSH.format(type="DFT^P03", id="A3"), PID, PV1, FT1, PRT, two, PRT, ZVD, ZVD))
        accounting = result.accounting
        assert accounting is not None
        assert accounting.rows == 1
        assert accounting.claimed["FT1-7"] == 1
        assert accounting.unclaimed == {"ZVD-1": 1, "ZVD-2": 1}

    def test_an_unmapped_message_type_is_ignored_whole(self) -> None:
        siu = hl7(MSH.format(type="SIU^S12", id="A4"), "SCH|1|2||||||常规|30|min", "ZVD|1|x|y")
        accounting = run(siu).accounting
        assert accounting is not None
        assert accounting.unclaimed == {}
        assert accounting.claimed == {}
        assert set(accounting.ignored) >= {"SCH-1", "ZVD-2"}

    def test_the_ignore_list_takes_segments_and_fields(self, tmp_path: Path) -> None:
        site = tmp_path / "his.yaml"
        site.write_text("extends: default\nignore: [ZVD-1, zvd-2]\n", encoding="utf-8")
        chosen = mapping(load_his_mapping(site))
        result = run(hl7(MSH.format(type="DFT^P03", id="A5"), PID, PV1, FT1, PRT, ZVD), chosen)
        assert result.accounting is not None
        assert result.accounting.unclaimed == {}
        site.write_text("extends: default\nignore: [ZVD]\n", encoding="utf-8")
        chosen = mapping(load_his_mapping(site))
        result = run(hl7(MSH.format(type="DFT^P03", id="A5"), PID, PV1, FT1, PRT, ZVD), chosen)
        assert result.accounting is not None
        assert result.accounting.unclaimed == {}

    def test_an_ignore_entry_that_names_no_segment_or_field_is_a_mapping_problem(
        self, tmp_path: Path
    ) -> None:
        site = tmp_path / "his.yaml"
        site.write_text("extends: default\nignore: [PV1.19]\n", encoding="utf-8")
        with pytest.raises(MappingError, match="neither a segment"):
            load_his_mapping(site)

    def test_unclaimed_error_fails_the_message_naming_the_fields(self) -> None:
        strict = mapping(HisMapping.model_validate({**default_mapping().model_dump(), "unclaimed": "error"}))
        clean = run(hl7(MSH.format(type="DFT^P03", id="A6"), PID, PV1, FT1, PRT), strict)
        assert clean.failures == ()
        assert len(clean.events) == 1
        result = run(hl7(MSH.format(type="DFT^P03", id="A6"), PID, PV1, FT1, PRT, ZVD), strict)
        assert result.events == ()
        [failure] = result.failures
        assert failure.code == "unclaimed_field"
        assert "ZVD-1, ZVD-2" in failure.reason
        assert failure.location.field == "ZVD-1"

    def test_a_skipped_charge_line_is_not_unclaimed(self) -> None:
        service = "FT1|1|CHG-9||20240616093000||CG|SV1001^心电监护^LOCAL|心电监护||2|12.00|6.00|0101"
        result = run(hl7(MSH.format(type="DFT^P03", id="A7"), PID, PV1, service))
        assert result.events == ()
        assert result.accounting is not None
        assert result.accounting.unclaimed == {}

    def test_the_item_name_falls_back_to_the_transaction_description(self) -> None:
        ft1 = FT1.replace("HC0301^冠脉球囊扩张导管^LOCAL|", "HC0301|冠脉球囊扩张导管 2.5x15mm")
        result = run(hl7(MSH.format(type="DFT^P03", id="A8"), PID, PV1, ft1, PRT))
        [consumed] = result.events
        assert consumed.event.payload.item_name == "冠脉球囊扩张导管 2.5x15mm"  # type: ignore[attr-defined]
        assert result.accounting is not None
        assert "FT1-8" in result.accounting.claimed


class TestFhir:
    def test_an_element_nothing_reads_is_unclaimed_with_a_sample(self) -> None:
        narrative = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">呼吸机</div>'}
        body = _fhir.device(note=[{"text": "电源适配器需更换"}], text=narrative)
        result = _fhir.run(body)
        accounting = result.accounting
        assert accounting is not None
        assert accounting.unclaimed == {"Device.note": 1}
        assert "电源适配器需更换" in accounting.samples["Device.note"][0]
        assert {"Device.identifier", "Device.status", "Device.id"} <= set(accounting.claimed)
        assert "Device.text" in accounting.ignored

    def test_ignore_by_type_or_by_element(self, tmp_path: Path) -> None:
        for entry in ("Device.note", "note"):
            site = tmp_path / "fhir.yaml"
            site.write_text(f"extends: default\nignore: [{entry}]\n", encoding="utf-8")
            m = load_fhir_mapping(site)
            accounting = _fhir.run(_fhir.device(note=[{"text": "x"}]), m=m).accounting
            assert accounting is not None
            assert accounting.unclaimed == {}
            assert accounting.ignored["Device.note"] == 1

    def test_unclaimed_error_refuses_the_resource_naming_the_element(self, tmp_path: Path) -> None:
        site = tmp_path / "fhir.yaml"
        site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
        m = load_fhir_mapping(site)
        assert _fhir.run(_fhir.device(), m=m).failures == ()
        result = _fhir.run(_fhir.device(note=[{"text": "x"}]), m=m)
        assert result.events == ()
        [failure] = result.failures
        assert "Device.note" in failure.reason
        assert failure.location.field == "Device.note"

    def test_a_resource_archived_untranslated_is_ignored_whole(self) -> None:
        body = (SHARED / "fhir" / "r4b_supplyrequest-example-simpleorder.json").read_bytes()
        accounting = _fhir.run(body).accounting
        assert accounting is not None
        assert accounting.claimed == {}
        assert accounting.unclaimed == {}
        assert accounting.ignored


def _check(system: str, path: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["mapping", "check", system, str(path), "--data-dir", str(tmp_path / "hub"), *extra],
        terminal_width=240,
    )
    return result.exit_code, result.output


class TestMappingCheck:
    def test_hl7_unclaimed_fields_fill_and_the_error_mode(self, tmp_path: Path) -> None:
        message = tmp_path / "dft.hl7"
        message.write_bytes(hl7(MSH.format(type="DFT^P03", id="C1"), PID, PV1, FT1, PRT, ZVD))
        code, out = _check("his", message, tmp_path)
        assert code == 0, out
        assert "ZVD-2" in out
        assert "合同HT-2024-017" in out
        assert "1/1 (100%)" in out
        assert "FT1-7" in out  # fill per field
        site = tmp_path / "his.yaml"
        site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
        code, out = _check("his", message, tmp_path, "--mapping", str(site))
        assert code == 1
        assert "ZVD-1, ZVD-2" in out

    def test_fhir_unclaimed_element_and_the_error_mode(self, tmp_path: Path) -> None:
        resource = tmp_path / "device.json"
        resource.write_text(json.dumps(_fhir.device(note=[{"text": "电源适配器需更换"}])), encoding="utf-8")
        code, out = _check("fhir", resource, tmp_path)
        assert code == 0, out
        assert "Device.note" in out
        site = tmp_path / "fhir.yaml"
        site.write_text("extends: default\nunclaimed: error\n", encoding="utf-8")
        code, out = _check("fhir", resource, tmp_path, "--mapping", str(site))
        assert code == 1
        assert "Device.note" in out


Z_VALUES = st.text(alphabet="ABCDEFGHJK0123456789供应商合同号", min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(st.just(""), Z_VALUES), min_size=1, max_size=8), at=st.integers(3, 5))
def test_a_vendor_segment_anywhere_adds_exactly_its_non_empty_fields_as_unclaimed(
    values: list[str], at: int
) -> None:
    segments = [MSH.format(type="DFT^P03", id="P1"), PID, PV1, FT1, PRT]
    plain = run(hl7(*segments))
    segments.insert(at, "ZVD|" + "|".join(values))
    extra = run(hl7(*segments))
    assert [e.event for e in extra.events] == [e.event for e in plain.events]
    assert extra.accounting is not None
    assert plain.accounting is not None
    expected = {f"ZVD-{i}": 1 for i, v in enumerate(values, 1) if v}
    assert extra.accounting.unclaimed == expected
    assert extra.accounting.claimed == plain.accounting.claimed
    assert extra.accounting.cells == plain.accounting.cells + len(expected)
