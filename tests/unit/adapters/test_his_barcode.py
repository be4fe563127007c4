"""UDI text from HL7 -> Barcode: every GS1 form, and what is wrong kept and flagged.

The parser's fast path and its agreement with biip are tested with the parser (tests/unit/schemas/test_gs1.py).
"""

from __future__ import annotations

import pytest

from adapters.his.barcode import parse_barcode


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
