"""UDI text -> Barcode: biip for every form, a fast path that must agree with biip."""

from __future__ import annotations

import pytest
from biip.gs1_messages import GS1Message
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.his.barcode import _from_elements, fast_hri, parse_barcode


def gtin14(base: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(base)))
    return base + str((10 - total % 10) % 10)


def via_biip(hri: str):
    return _from_elements(hri, "gs1", GS1Message.parse_hri(hri).element_strings)


class TestParseBarcode:
    def test_human_readable_gs1(self):
        """The `(01)…(17)…(10)…(21)…` form yields GTIN, expiry, lot and serial."""
        code = parse_barcode("(01)00844588003288(17)141120(10)7654321D(21)10987654d321")
        assert (code.symbology, code.gtin, code.lot, code.serial) == (
            "gs1",
            "00844588003288",
            "7654321D",
            "10987654d321",
        )
        assert code.expiry is not None
        assert code.expiry.isoformat() == "2014-11-20"
        assert code.parse_error is None

    def test_braces_as_in_fhir_carrier_hrf(self):
        """FHIR's carrierHRF writes `{01}…`; it parses like parentheses but keeps the raw text."""
        code = parse_barcode("{01}00844588003288{17}141120{10}7654321D{21}10987654d321")
        assert code.gtin == "00844588003288"
        assert code.raw.startswith("{01}")

    def test_element_string_with_symbology_identifier_and_gs(self):
        """A scanned `]d2…` element string with GS separators parses through biip."""
        code = parse_barcode("]d2010084458800328817141120107654321D\x1d2110987654d321")
        assert (code.gtin, code.lot, code.serial) == ("00844588003288", "7654321D", "10987654d321")

    def test_gs1_digital_link(self):
        """A GS1 Digital Link URI yields its GTIN and lot."""
        code = parse_barcode("https://id.gs1.org/01/00844588003288/10/LOT1")
        assert (code.symbology, code.gtin, code.lot) == ("gs1_digital_link", "00844588003288", "LOT1")

    def test_hibcc_is_kept_and_flagged(self):
        """HIBCC is not parsed; the raw text stays with a reason."""
        code = parse_barcode(
            "+H123PARTNO1234567890120/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C"
        )
        assert code.symbology == "hibcc"
        assert code.parse_error is not None
        assert code.gtin is None

    @pytest.mark.parametrize("text", ["ABC-123", "(01)123", "(99)"])
    def test_unparseable_text_is_kept_and_flagged(self, text):
        """Anything biip cannot parse is kept verbatim with biip's reason, never dropped."""
        code = parse_barcode(text)
        assert code.raw == text
        assert code.symbology == "unknown"
        assert code.parse_error

    def test_wrong_gtin_check_digit_is_flagged_but_kept(self):
        """A GTIN with a wrong check digit is kept with biip's check-digit message."""
        code = parse_barcode("(01)06938123456789(10)L1")
        assert code.gtin == "06938123456789"
        assert code.parse_error is not None
        assert "check digit" in code.parse_error


AIS = st.sampled_from(["01", "10", "11", "17", "21", "15", "30"])


@st.composite
def hri_strings(draw):
    """HRI strings mixing valid and invalid GTINs, dates, lots and serials, and unsupported AIs."""
    parts = []
    for ai in draw(st.lists(AIS, min_size=1, max_size=5)):
        if ai == "01":
            base = draw(st.text(alphabet="0123456789", min_size=13, max_size=13))
            value = gtin14(base) if draw(st.booleans()) else base + draw(st.sampled_from("0123456789"))
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


class TestFastPathAgreesWithBiip:
    @given(hri_strings())
    @settings(max_examples=400, deadline=None)
    def test_fast_result_equals_biip_result(self, hri):
        """Whenever the fast path answers, its Barcode is exactly what biip's parse gives."""
        fast = fast_hri(hri, hri)
        if fast is None:
            return
        assert fast == via_biip(hri)

    def test_fast_path_answers_the_common_case(self):
        """A valid UDI with AIs 01/17/10/21 takes the fast path (it is not a dead branch)."""
        hri = f"(01){gtin14('0693812345001')}(17)271231(10)LOT2024A(21)SN0001"
        assert fast_hri(hri, hri) == via_biip(hri)
        assert fast_hri(hri, hri) is not None

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
    def test_fast_path_declines_what_biip_must_judge(self, hri):
        """Errors and unusual AIs are left to biip, so people see biip's messages."""
        assert fast_hri(hri, hri) is None
