"""SPD barcode parsing: the GS1 forms scanners deliver, the shared GS1 corpus, and properties."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.spd.barcode import as_hri, normalise_gtin, parse_barcode

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "gs1"  # beside the repository
_AI = re.compile(r"[({](\d{2,4})[)}]([^({]+)")


def _unescape(text: str) -> str:
    # The corpus writes the GS control character as the four characters \x1d.
    return text.replace("\\x1d", "\x1d")


def _yymmdd(text: str) -> date:
    year, month, day = 2000 + int(text[:2]), int(text[2:4]), int(text[4:6])
    if day == 0:  # GS1: day 00 means the last day of the month
        following = date(year + month // 12, month % 12 + 1, 1)
        return date.fromordinal(following.toordinal() - 1)
    return date(year, month, day)


def _from_elements(pairs: dict[str, str], gtin: str | None = None) -> dict[str, Any]:
    found = gtin or pairs.get("01")
    return {
        "gtin": found.zfill(14) if found else None,
        "lot": pairs.get("10"),
        "expiry": _yymmdd(pairs["17"]) if "17" in pairs else None,
        "serial": pairs.get("21"),
    }


def _from_link(uri: str) -> dict[str, Any]:
    parts = urlsplit(uri.removeprefix("]Q3"))
    segments = [s for s in parts.path.split("/") if s]
    pairs = {
        segments[i]: segments[i + 1]
        for i in range(len(segments) - 1)
        if segments[i] in {"01", "10", "21"} and re.fullmatch(r"\d{2}", segments[i])
    }
    pairs.update(p.split("=", 1) for p in parts.query.split("&") if p[:3] in {"10=", "17=", "21="})
    return _from_elements(pairs)


def _expected(text: str, fixture: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a correct parse finds in `text`, from biip's recorded results or the text's own AIs."""
    if fixture is not None and fixture["digital_link"]:
        return {**_from_link(text), "gtin": fixture["gtin"].zfill(14) if fixture["gtin"] else None}
    if fixture is not None and fixture["hri"]:
        pairs = dict(_AI.findall(fixture["hri"]))
        if fixture["gtin"] and "01" not in pairs:
            return _from_elements({}, fixture["gtin"])  # a bare GTIN that also reads as other AIs
        return _from_elements(pairs)
    if text.startswith(("(", "{")):
        return _from_elements(dict(_AI.findall(text)))
    if fixture is not None and fixture["gtin"]:
        return _from_elements({}, fixture["gtin"])
    return None


def _corpus() -> list[tuple[str, dict[str, Any] | None]]:
    results = {r["input"]: r for r in json.loads((CORPUS / "biip_5.2.0_parse_results.json").read_text())}
    cases: list[tuple[str, dict[str, Any] | None]] = []
    for name in ("biip_gs1_element_strings.txt", "biip_gs1_digital_link_uris.txt"):
        lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
        cases.extend(
            (_unescape(line), results.get(line)) for line in lines if line and not line.startswith("#")
        )
    udi = json.loads((CORPUS / "udi_carrier_examples_biip.json").read_text(encoding="utf-8"))
    for entry in udi:  # this file records biip's output per string in its own shape
        values = entry["biip_ai_values"] or {}
        recorded = {"digital_link": False, "hri": entry["biip_hri"], "gtin": values.get("01")}
        cases.append((entry["input"], recorded if entry["biip_hri"] else None))
    return cases


CASES = _corpus()


class TestCorpus:
    @pytest.mark.parametrize(("text", "fixture"), CASES, ids=[repr(c[0])[:40] for c in CASES])
    def test_every_string_parses_as_expected_or_is_flagged(
        self, text: str, fixture: dict[str, Any] | None
    ) -> None:
        """Each corpus string yields the GTIN/lot/expiry/serial it holds, or is kept verbatim and flagged."""
        barcode = parse_barcode(text)
        assert barcode.raw == text.strip()
        if barcode.parse_error is not None:
            assert barcode.symbology == "unknown"
            assert (barcode.gtin, barcode.lot, barcode.expiry, barcode.serial) == (None, None, None, None)
            return
        expected = _expected(text, fixture)
        assert expected is not None, "parsed a string the corpus says holds no GS1 data"
        found = {"gtin": barcode.gtin, "lot": barcode.lot, "expiry": barcode.expiry, "serial": barcode.serial}
        assert found == expected

    def test_most_of_the_corpus_parses(self) -> None:
        """The parser is not flagging its way through: most corpus strings parse."""
        parsed = sum(parse_barcode(text).parse_error is None for text, _ in CASES)
        assert parsed >= 50
        assert parsed < len(CASES)  # the corpus holds deliberately invalid strings too

    def test_every_digital_link_biip_reads_is_kept_as_one(self) -> None:
        """A URI biip recognises as GS1 Digital Link parses with symbology gs1_digital_link."""
        links = [text for text, fixture in CASES if fixture is not None and fixture["digital_link"]]
        assert len(links) >= 15
        assert {parse_barcode(text).symbology for text in links} == {"gs1_digital_link"}

    def test_udi_carrier_forms_of_one_device_agree(self) -> None:
        """The FHIR UDI example in braces and as a GS-separated DataMatrix string read the same."""
        braces, datamatrix = (text for text, _ in CASES if "00844588003288" in text)
        first, second = parse_barcode(braces), parse_barcode(datamatrix)
        assert (first.gtin, first.lot, first.expiry, first.serial) == (
            "00844588003288",
            "7654321D",
            date(2014, 11, 20),
            "10987654d321",
        )
        assert (second.gtin, second.lot, second.expiry, second.serial) == (
            first.gtin,
            first.lot,
            first.expiry,
            first.serial,
        )

    def test_hl7_dev_example_parses_from_its_human_readable_form(self) -> None:
        """The HL7 v2.9 DEV example `(01)…(11)…(17)…(10)…(21)…` gives its DI, lot, expiry and serial."""
        barcode = parse_barcode("(01)00643169001763(11)140401(17)160712(10)123ABC(21)21A11F4855")
        assert (barcode.gtin, barcode.lot, barcode.expiry, barcode.serial) == (
            "00643169001763",
            "123ABC",
            date(2016, 7, 12),
            "21A11F4855",
        )

    def test_hibcc_is_kept_and_says_why(self) -> None:
        """A HIBCC code is not parsed: kept as written, flagged, with a reason naming HIBCC."""
        barcode = parse_barcode(
            "+H123PARTNO1234567890120/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C"
        )
        assert barcode.symbology == "unknown"
        assert barcode.parse_error is not None
        assert "HIBCC" in barcode.parse_error


class TestForms:
    def test_gs_separated_string_with_symbology_identifier(self) -> None:
        """A DataMatrix string with ]d2 and a GS after the lot gives all four fields."""
        barcode = parse_barcode(f"]d201{'06901234567892'}17261231" + "10L0T-1\x1d21SN0001")
        assert barcode.symbology == "gs1"
        assert (barcode.gtin, barcode.lot, barcode.expiry, barcode.serial) == (
            "06901234567892",
            "L0T-1",
            date(2026, 12, 31),
            "SN0001",
        )

    def test_printable_gs_stand_in_is_read_as_gs(self) -> None:
        """`<GS>` where the separator goes reads like the control character, and raw keeps the text."""
        text = "010690123456789217261231" + "10L1<GS>21S1"
        barcode = parse_barcode(text)
        assert (barcode.lot, barcode.serial, barcode.raw) == ("L1", "S1", text)

    def test_stand_ins_are_configurable(self) -> None:
        """A site's own GS stand-in works once listed, and the default ones no longer apply."""
        text = "010690123456789217261231" + "10L1~21S1"
        assert parse_barcode(text).lot != "L1"
        assert parse_barcode(text, gs_aliases=["~"]).lot == "L1"

    def test_expiry_day_00_is_the_last_day_of_the_month(self) -> None:
        """GS1 (17) with day 00 means the month's last day."""
        assert parse_barcode("(01)06901234567892(17)260200(10)L1").expiry == date(2026, 2, 28)

    def test_bare_gtin_13_is_returned_as_gtin_14(self) -> None:
        """An EAN-13 scan yields its GTIN padded to 14 digits."""
        barcode = parse_barcode("6901234567892")
        assert (barcode.symbology, barcode.gtin) == ("gs1", "06901234567892")

    def test_wrong_check_digit_in_ai_01_is_flagged(self) -> None:
        """A GTIN with a wrong check digit is not trusted: the code is flagged, not half-parsed."""
        barcode = parse_barcode("(01)06901234567893(10)L1")
        assert barcode.symbology == "unknown"
        assert barcode.parse_error is not None
        assert "check digit" in barcode.parse_error

    def test_private_code_is_kept_verbatim(self) -> None:
        """A supplier's private code comes back as written, flagged unknown."""
        barcode = parse_barcode("  GYS-GZ11001-2404D841 ")
        assert (barcode.raw, barcode.symbology) == ("GYS-GZ11001-2404D841", "unknown")
        assert barcode.parse_error

    def test_empty_text_is_refused(self) -> None:
        """An empty cell is not a barcode: the caller must not ask."""
        with pytest.raises(ValueError, match="empty barcode"):
            parse_barcode(" \x1d ")

    def test_as_hri_writes_the_canonical_form(self) -> None:
        """The human-readable form lists GTIN, expiry, lot and serial in GS1 order."""
        barcode = parse_barcode("https://id.gs1.org/01/06901234567892/10/L1/21/S9?17=261231")
        assert as_hri(barcode) == "(01)06901234567892(17)261231(10)L1(21)S9"

    def test_as_hri_is_none_without_a_gtin(self) -> None:
        """A code without a GTIN has no UDI form."""
        assert as_hri(parse_barcode("GYS-1")) is None


class TestNormaliseGtin:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("6901234567892", "06901234567892"),
            ("06901234567892", "06901234567892"),
            ("96385074", "00000096385074"),
        ],
    )
    def test_valid_gtins_become_gtin_14(self, text: str, expected: str) -> None:
        """GTIN-8/13/14 are returned as GTIN-14."""
        assert normalise_gtin(text) == expected

    @pytest.mark.parametrize("text", ["06901234567893", "12345", "69012345678AB"])
    def test_malformed_gtins_raise(self, text: str) -> None:
        """A wrong length, a letter or a wrong check digit raises ValueError."""
        with pytest.raises(ValueError, match=r"GTIN|check digit"):
            normalise_gtin(text)


def _check_digit(body: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


GTINS = st.text(alphabet="0123456789", min_size=13, max_size=13).map(lambda b: b + _check_digit(b))
CODES = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefxyz0123456789-./", min_size=1, max_size=20)
EXPIRIES = st.dates(min_value=date(2015, 1, 1), max_value=date(2045, 12, 31))


def _encode(form: str, gtin: str, expiry: date, lot: str, serial: str) -> str:
    yymmdd = f"{expiry:%y%m%d}"
    if form == "hri":
        return f"(01){gtin}(17){yymmdd}(10){lot}(21){serial}"
    if form == "braces":
        return f"{{01}}{gtin}{{17}}{yymmdd}{{10}}{lot}{{21}}{serial}"
    if form == "link":
        return (
            f"https://id.gs1.org/01/{gtin}/10/{quote(lot, safe='')}/21/{quote(serial, safe='')}?17={yymmdd}"
        )
    prefix, separator = {"gs": ("", "\x1d"), "datamatrix": ("]d2", "\x1d"), "alias": ("]C1", "<GS>")}[form]
    return f"{prefix}01{gtin}17{yymmdd}10{lot}{separator}21{serial}"


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(
        GTINS,
        EXPIRIES,
        CODES,
        CODES,
        st.sampled_from(["hri", "braces", "link", "gs", "datamatrix", "alias"]),
    )
    def test_every_form_round_trips(self, gtin: str, expiry: date, lot: str, serial: str, form: str) -> None:
        """Whatever form a label is written in, GTIN, lot, expiry and serial come back exactly."""
        barcode = parse_barcode(_encode(form, gtin, expiry, lot, serial))
        assert barcode.parse_error is None
        assert (barcode.gtin, barcode.lot, barcode.expiry, barcode.serial) == (gtin, lot, expiry, serial)

    @settings(max_examples=300, deadline=None)
    @given(st.text(min_size=1, max_size=60).filter(lambda t: t.strip() != ""))
    def test_any_text_is_parsed_or_kept_and_flagged(self, text: str) -> None:
        """No text makes the parser raise: it parses, or comes back verbatim with a reason."""
        barcode = parse_barcode(text)
        assert barcode.raw == text.strip()
        if barcode.parse_error is None:
            assert barcode.symbology in {"gs1", "gs1_digital_link"}
        else:
            assert barcode.symbology == "unknown"

    @settings(max_examples=200, deadline=None)
    @given(
        st.text(alphabet="0123456789()\x1d]dC1Q3<GS>{}", min_size=1, max_size=50).filter(lambda t: t.strip())
    )
    def test_gs1_looking_noise_never_raises(self, text: str) -> None:
        """Digit and bracket soup, the likeliest corruption of a scan, is parsed or flagged, never raised."""
        barcode = parse_barcode(text)
        assert (barcode.parse_error is None) == (barcode.symbology != "unknown")
