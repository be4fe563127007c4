"""Reading codes for the trace: GS1 in every form it reaches us, and anything else without raising."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.inventory.codes import NOTHING, ParsedCode, gtin14, parse_code

ALNUM = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=20)


def check_digit(body: str) -> str:
    """GS1 mod-10 check digit over the 13 leading digits of a GTIN-14."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


gtins = st.text(alphabet="0123456789", min_size=13, max_size=13).map(lambda body: body + check_digit(body))
dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2049, 12, 31))


@st.composite
def labels(draw: st.DrawFn) -> tuple[str, ParsedCode]:
    """A GS1 label in one of the forms scanners and exports deliver, with what it encodes."""
    code = ParsedCode(gtin=draw(gtins), lot=draw(ALNUM), serial=draw(ALNUM), expiry=draw(dates))
    assert code.expiry is not None
    yymmdd = f"{code.expiry:%y%m%d}"
    form = draw(st.sampled_from(["hri", "braced", "gs", "gs-alias", "symbology", "link"]))
    if form == "hri":
        text = f"(01){code.gtin}(17){yymmdd}(10){code.lot}(21){code.serial}"
    elif form == "braced":
        text = f"{{01}}{code.gtin}{{17}}{yymmdd}{{10}}{code.lot}{{21}}{code.serial}"
    elif form == "gs":
        text = f"01{code.gtin}17{yymmdd}10{code.lot}\x1d21{code.serial}"
    elif form == "gs-alias":
        text = f"01{code.gtin}17{yymmdd}10{code.lot}<GS>21{code.serial}"
    elif form == "symbology":
        text = f"]d201{code.gtin}17{yymmdd}10{code.lot}\x1d21{code.serial}"
    else:
        text = f"https://id.gs1.org/01/{code.gtin}/10/{code.lot}/21/{code.serial}?17={yymmdd}"
    return text, code


class TestParseCode:
    @given(label=labels())
    def test_every_form_reads_back_what_it_encodes(self, label: tuple[str, ParsedCode]) -> None:
        """Human-readable, braced, element string (GS, stand-in, symbology id) and Digital Link agree."""
        text, expected = label
        assert parse_code(text) == expected

    @given(text=st.text(max_size=80))
    def test_never_raises_on_arbitrary_text(self, text: str) -> None:
        """Whatever is typed or scanned, the answer is a ParsedCode (NOTHING when not GS1)."""
        assert isinstance(parse_code(text), ParsedCode)

    @pytest.mark.parametrize("text", ["ST24R00001", "GYS-GZ11001-2404D841", "+H123ABC", "]d", "", "   "])
    def test_plain_serials_and_foreign_codes_are_nothing(self, text: str) -> None:
        """Serials, private codes, HIBCC and broken symbology identifiers are not GS1."""
        assert parse_code(text) == NOTHING

    def test_a_bare_gtin_is_a_gtin_only(self) -> None:
        """A GTIN-13 as an EAN scan gives its GTIN-14, no lot or serial."""
        assert parse_code("6947794425876") == ParsedCode(gtin="06947794425876")


class TestGtin14:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("6947794425876", "06947794425876"),
            ("06947794425876", "06947794425876"),
            (" 06947794425876 ", "06947794425876"),
            ("06947794425877", None),  # wrong check digit
            ("12345", None),
            ("HX-88017", None),
            (None, None),
        ],
    )
    def test_normalises_valid_gtins_only(self, text: str | None, expected: str | None) -> None:
        """Valid GTINs of any length become GTIN-14; anything else is None."""
        assert gtin14(text) == expected

    @given(gtin=gtins)
    def test_generated_gtins_are_valid(self, gtin: str) -> None:
        """The check digit of the generator agrees with biip's."""
        assert gtin14(gtin) == gtin
