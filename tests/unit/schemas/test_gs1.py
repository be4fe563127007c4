"""The one GS1 parser (schemas.gs1): every form of one label reads alike, the corpus, the fast path."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

import biip
import pytest
from biip.gs1_messages import GS1Message
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.gs1 import (
    Gs1Reading,
    _config,
    _from_message,
    _from_result,
    fast_element_string,
    fast_hri,
    read_gs1,
)

# The corpus samples with biip's recorded results, and label strategies, as the SPD parser's tests use them.
from tests.unit.adapters.test_spd_barcode import CASES, CODES, EXPIRIES, GTINS
from tests.unit.adapters.test_spd_barcode import _check_digit as check_digit

FORMS = ["hri", "braces", "gs", "fnc1", "datamatrix", "gs1_128", "gs_alias", "digital_link", "qr_link"]


def encode(form: str, gtin: str, expiry: date, lot: str, serial: str) -> str:
    """The label (GTIN, expiry, lot, serial) written in `form`."""
    yymmdd = f"{expiry:%y%m%d}"
    if form == "hri":
        return f"(01){gtin}(17){yymmdd}(10){lot}(21){serial}"
    if form == "braces":
        return f"{{01}}{gtin}{{17}}{yymmdd}{{10}}{lot}{{21}}{serial}"
    if form in {"digital_link", "qr_link"}:
        prefix = "]Q3" if form == "qr_link" else ""
        path = f"01/{gtin}/10/{quote(lot, safe='')}/21/{quote(serial, safe='')}"
        return f"{prefix}https://id.gs1.org/{path}?17={yymmdd}"
    prefix, separator = {
        "gs": ("", "\x1d"),
        "fnc1": ("\x1d", "\x1d"),  # FNC1 in first position, as some scanners send it
        "datamatrix": ("]d2", "\x1d"),
        "gs1_128": ("]C1", "\x1d"),
        "gs_alias": ("]d2", "<GS>"),
    }[form]
    return f"{prefix}01{gtin}17{yymmdd}10{lot}{separator}21{serial}"


def facts(reading: Gs1Reading) -> tuple[Any, ...]:
    return (reading.error, reading.gtin14, reading.lot, reading.expiry, reading.serial)


class TestFormsOfOneLabel:
    @settings(max_examples=150, deadline=None)
    @given(GTINS, EXPIRIES, CODES, CODES)
    def test_every_form_reads_the_same(self, gtin: str, expiry: date, lot: str, serial: str) -> None:
        """HRI, braces, raw with GS (with/without FNC1, ]d2, ]C1, a stand-in) and Digital Link agree."""
        readings = {form: facts(read_gs1(encode(form, gtin, expiry, lot, serial))) for form in FORMS}
        assert set(readings.values()) == {(None, gtin, lot, expiry, serial)}, readings

    @settings(max_examples=100, deadline=None)
    @given(GTINS, EXPIRIES, CODES, CODES, st.sampled_from(FORMS))
    def test_the_canonical_hri_is_the_same_from_every_form(
        self, gtin: str, expiry: date, lot: str, serial: str, form: str
    ) -> None:
        """The key a UDI is filed under does not depend on how the label reached the hub."""
        reading = read_gs1(encode(form, gtin, expiry, lot, serial))
        hri = read_gs1(encode("hri", gtin, expiry, lot, serial)).hri
        assert hri is not None
        assert sorted(_elements(reading.hri)) == sorted(_elements(hri))

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=60))
    def test_any_text_is_read_or_kept_verbatim_and_flagged(self, text: str) -> None:
        """Nothing raises; what is not GS1 keeps its text and says why."""
        reading = read_gs1(text)
        assert reading.raw == (text.strip() or text)
        if reading.symbology in {"unknown", "hibcc"}:
            assert reading.error
            if reading.raw.strip():  # a blank is no barcode: callers refuse it before
                assert reading.barcode().parse_error == reading.error

    def test_a_wrong_check_digit_keeps_the_gtin_as_written_and_says_so(self) -> None:
        """The GTIN as written stays (a person can see the typo); it is not a valid GTIN-14."""
        reading = read_gs1("(01)06938123456789(10)L1")
        assert (reading.symbology, reading.gtin, reading.gtin14, reading.lot) == (
            "gs1",
            "06938123456789",
            None,
            "L1",
        )
        assert reading.error is not None
        assert "check digit" in reading.error
        assert reading.barcode().symbology == "unknown"

    @pytest.mark.parametrize("text", ["]", "]d", "+H123ABC", "GYS-GZ11001-2404D841", "   "])
    def test_foreign_and_broken_codes_are_flagged(self, text: str) -> None:
        """A truncated symbology identifier, HIBCC, a private code, a blank: flagged, never raised."""
        reading = read_gs1(text)
        assert reading.error
        assert reading.gtin is None


def _elements(hri: str | None) -> list[str]:
    assert hri is not None
    return [f"({part}" for part in hri.split("(") if part]


class TestCorpus:
    @pytest.mark.parametrize(("text", "recorded"), CASES, ids=[repr(c[0])[:40] for c in CASES])
    def test_each_sample_is_read_as_biip_records_or_flagged(
        self, text: str, recorded: dict[str, Any] | None
    ) -> None:
        """Every corpus string reads to what biip recorded for it, or is kept verbatim and flagged."""
        reading = read_gs1(text)
        assert reading.raw == text.strip()
        if reading.error is not None:
            assert reading.gtin14 is None or reading.symbology != "gs1"
            return
        assert reading.symbology in {"gs1", "gs1_digital_link"}
        if text.startswith(("(", "{")):  # HRI (biip.parse does not read it): the text is the truth
            assert reading.hri == text.replace("{", "(").replace("}", ")")
        elif recorded is not None and recorded["digital_link"]:
            assert reading.symbology == "gs1_digital_link"
            assert reading.gtin14 == (recorded["gtin"].zfill(14) if recorded["gtin"] else None)
        elif recorded is not None and recorded["hri"] and "(01)" in recorded["hri"]:
            assert reading.hri == recorded["hri"]
        elif recorded is not None and recorded["gtin"]:
            assert reading.gtin14 == recorded["gtin"].zfill(14)
        elif recorded is not None:
            assert reading.hri == recorded["hri"]

    def test_the_corpus_is_mostly_read_and_partly_flagged(self) -> None:
        """The walk is not vacuous: most samples parse, and the deliberately bad ones are flagged."""
        errors = [read_gs1(text).error for text, _ in CASES]
        assert sum(e is None for e in errors) >= 50
        assert sum(e is not None for e in errors) >= 5


AIS = st.sampled_from(["01", "10", "11", "17", "21", "15", "30"])


@st.composite
def hri_strings(draw: st.DrawFn) -> str:
    """HRI strings mixing valid and invalid GTINs, dates, lots and serials, and unsupported AIs."""
    parts = []
    for ai in draw(st.lists(AIS, min_size=1, max_size=5)):
        if ai == "01":
            base = draw(st.text(alphabet="0123456789", min_size=13, max_size=13))
            value = (
                base + check_digit(base)
                if draw(st.booleans())
                else base + draw(st.sampled_from("0123456789"))
            )
        elif ai in {"11", "17", "15"}:
            value = draw(
                st.one_of(
                    st.dates().map(lambda d: d.strftime("%y%m%d")),
                    st.text(alphabet="0123456789", min_size=6, max_size=6),
                )
            )
        elif ai == "30":
            value = draw(st.text(alphabet="0123456789", min_size=1, max_size=8))
        else:
            value = draw(st.text(alphabet="ABCxyz0123456789-./_", min_size=1, max_size=22))
        parts.append(f"({ai}){value}")
    return "".join(parts)


@st.composite
def element_strings(draw: st.DrawFn) -> str:
    """Element strings as a scanner sends them, mostly valid (so the fast path is exercised) with
    now and then a wrong check digit, date, AI or character: an optional symbology identifier, AIs
    without parentheses, GS after variable-length values (sometimes after fixed ones too, or not
    at all before the end)."""
    rare = st.integers(0, 15).map(lambda n: n == 0)
    ais = draw(st.lists(st.sampled_from(["01", "10", "11", "17", "21"]), min_size=1, max_size=5, unique=True))
    if "01" not in ais and draw(st.integers(0, 4)):
        ais.insert(draw(st.integers(0, len(ais))), "01")
    if draw(rare):
        ais.append(draw(st.sampled_from(["15", "30", "01", "1"])))
    out = draw(st.sampled_from(["", "", "]d2", "]C1", "]Q3", "]e0", "]d1", "]", "\x1d"]))
    for ai in ais:
        if ai == "01":
            base = draw(st.text(alphabet="0123456789", min_size=13, max_size=13))
            value = base + (draw(st.sampled_from("0123456789")) if draw(rare) else check_digit(base))
        elif ai in {"11", "17", "15"}:
            value = draw(st.dates().map(lambda d: d.strftime("%y%m%d")))
            if draw(rare):
                value = draw(st.text(alphabet="0123456789", min_size=5, max_size=7))
        elif ai == "30":
            value = draw(st.text(alphabet="0123456789", min_size=1, max_size=8))
        else:
            alphabet = "ABCxyz0123456789-./_" + ("()é\x1d " if draw(rare) else "")
            value = draw(st.text(alphabet=alphabet, min_size=0 if draw(rare) else 1, max_size=22))
        out += ai + value
        if draw(st.integers(0, 3)):
            out += "\x1d"
    return out


def via_biip(hri: str) -> Gs1Reading:
    return _from_message(hri, GS1Message.parse_hri(hri))


class TestFastPathAgreesWithBiip:
    @given(hri_strings())
    @settings(max_examples=400, deadline=None)
    def test_fast_result_equals_biip_result(self, hri: str) -> None:
        """Whenever the fast path answers, its reading is exactly what biip's parse gives."""
        fast = fast_hri(hri, hri)
        if fast is None:
            return
        assert fast == via_biip(hri)

    @given(element_strings())
    @settings(max_examples=600, deadline=None)
    def test_fast_element_string_equals_biip_result(self, value: str) -> None:
        """Whenever the element-string fast path answers, its reading is exactly biip's."""
        fast = fast_element_string(value, value)
        if fast is None:
            return
        assert fast == _from_result(value, biip.parse(value, config=_config()))

    @pytest.mark.parametrize(
        "value",
        [
            "]d2010693812345004117300101\x1d10HIP2406\x1d21HX-88017",  # GS after a fixed-length value too
            "]C101069381234500411730010110HIP2406\x1d21HX-88017",
            "01069381234500411730010110HIP2406",
        ],
    )
    def test_fast_element_string_answers_the_common_case(self, value: str) -> None:
        """A valid scanned UDI with AIs 01/17/10/21 takes the element-string fast path, as biip reads it."""
        fast = fast_element_string(value, value)
        assert fast is not None
        assert fast == _from_result(value, biip.parse(value, config=_config()))
        assert read_gs1(value) == fast

    @pytest.mark.parametrize(
        "value",
        [
            "]d20106938123456789",  # bad check digit: biip explains it
            "]d2173012311012",  # no AI (01): biip decides what it is
            "]d1010693812345004110X",  # not a GS1 symbology identifier
            "01069381234500411012345678901234567890123",  # lot over 20 characters without GS
            "0106938123450041\x1d\x1d10X",  # an empty element between two GS
            "0106938123450041151231",  # best-before AI: not in the fast set
        ],
    )
    def test_fast_element_string_declines_what_biip_must_judge(self, value: str) -> None:
        """Errors, unusual AIs and ambiguous separators are left to biip."""
        assert fast_element_string(value, value) is None

    def test_fast_path_answers_the_common_case(self) -> None:
        """A valid UDI with AIs 01/17/10/21 takes the fast path (it is not a dead branch)."""
        base = "0693812345001"
        hri = f"(01){base}{check_digit(base)}(17)271231(10)LOT2024A(21)SN0001"
        assert fast_hri(hri, hri) is not None
        assert fast_hri(hri, hri) == via_biip(hri)

    @pytest.mark.parametrize(
        "hri",
        [
            "(01)06938123456789",  # bad check digit: biip explains it
            "(17)271332",  # month 13
            "(15)271231",  # best-before AI: not in the fast set
            "(10)LOT(10)LOT",  # repeated AI
            "x(01)06938123450010",  # leading junk
        ],
    )
    def test_fast_path_declines_what_biip_must_judge(self, hri: str) -> None:
        """Errors and unusual AIs are left to biip, so people see biip's messages."""
        assert fast_hri(hri, hri) is None
