"""The crashes the fuzz suites found, each pinned by the smallest input that showed it."""

from __future__ import annotations

import io
import struct
import zipfile
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from adapters._files.tabular import read_grid
from adapters._files.values import ValueParseError, canonical_decimal, parse_amount
from adapters.errors import MalformedMessage
from adapters.fhir.errors import FhirRejected
from adapters.his.decode import charset_codec, decode
from adapters.his.header import header
from adapters.oa.values import parse_datetime, parse_parts_text
from tests.reliability.fuzzing import EXAMPLES, translate


def test_a_nul_in_msh18_is_an_unknown_charset_not_a_value_error() -> None:
    """codecs.lookup raises ValueError on a NUL; MSH-18 is the sender's text (found by test_fuzz_hl7)."""
    message = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5|||||\x00\rEVN|A01\r"
    assert charset_codec("\x00") is None
    assert decode(message).how == "utf-8"
    assert header(message).control_id == "1"


# The suite's timeout is the bound, not a figure: the old scan was quadratic (two finds to the end
# of the payload per line), hours for this input on the MLLP path; now it is one regex pass.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("line_break", [b"\n", b"\r"])
def test_a_16_mib_frame_of_short_lines_without_msh_is_refused_in_one_pass(line_break: bytes) -> None:
    with pytest.raises(MalformedMessage, match="no MSH segment"):
        header((b"x" + line_break) * 8_000_000)


@pytest.mark.timeout(120)
def test_a_quantity_cell_with_a_long_run_of_spaces_fails_its_row_in_one_pass() -> None:
    """The unit-suffix pattern backtracked over the spaces: 24 s for 20,000, longer than Excel allows here."""
    lines = (EXAMPLES / "spd" / "04_出库配送单_2024Q2.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[9] = "1" + " " * 30_000 + "x"
    payload = "\r\n".join([lines[0], ",".join(cells), *lines[2:5]]).encode()
    outcome = translate("spd", payload, "04_出库配送单_long.csv")
    assert [(f.location.line, f.location.column) for f in outcome.failures] == [(2, "数量")]
    assert len(outcome.events) == 3


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "parse",
    [lambda text: parse_datetime(text, ZoneInfo("Asia/Shanghai")), parse_parts_text],
    ids=["oa-datetime", "oa-parts"],
)
def test_oa_values_with_a_long_run_of_spaces_are_refused_in_one_pass(parse) -> None:
    """Both patterns backtracked polynomially over spaces: seconds for 8,000, hours for 100,000."""
    with pytest.raises(ValueParseError):
        parse("2024年1月1" + " " * 100_000 + "x")


@pytest.mark.parametrize("codec", ["undefined", "punycode"])
def test_an_oa_xml_declaring_a_codec_that_is_no_charset_is_refused(codec: str) -> None:
    """bytes.decode raised a bare UnicodeError (not UnicodeDecodeError) for these codec names."""
    data = f'<?xml version="1.0" encoding="{codec}"?><records><record/></records>'.encode()
    with pytest.raises(MalformedMessage, match=rf"^x\.xml: declares encoding '{codec}'"):
        translate("oa", data, "x.xml")


def test_an_amount_past_the_decimal_precision_fails_its_unit_not_the_translation() -> None:
    """A part's price of a 1 followed by 300 zeros (hypothesis, OA structural mutation) raised
    decimal.InvalidOperation out of the translator; it is a refused value now, naming its size."""
    with pytest.raises(ValueParseError, match="301 digits is too large for an amount"):
        parse_amount("1" + "0" * 300)
    assert parse_amount("999,999,999,999,999,999.99") == Decimal("999999999999999999.99")
    assert canonical_decimal(Decimal("1E+300")) == Decimal("1E+300")  # no quantize past the precision


def test_a_fhir_json_integer_of_5000_digits_is_refused_not_a_value_error() -> None:
    """int() refuses more than 4300 digits with a bare ValueError, which json.loads let through."""
    body = b'{"resourceType": "Device", "x": 1' + b"0" * 5000 + b"}"
    with pytest.raises(FhirRejected, match="an integer of 5,001 digits"):
        translate("fhir", body, "x")


def test_a_csv_field_over_128_kib_in_the_first_lines_is_refused_naming_its_line() -> None:
    """csv's field size limit tripped the delimiter sniffer with a bare _csv.Error."""
    with pytest.raises(MalformedMessage, match=r"^big\.csv: line 2: not readable as CSV: field larger"):
        read_grid(b"a,b\n" + b"x" * 200_000 + b",y\n", filename="big.csv")


def _workbook(**replace: bytes) -> bytes:
    source = zipfile.ZipFile(EXAMPLES / "spd" / "05_消耗扫码_2024-06.xlsx")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(
                info.filename,
                replace.get(info.filename.replace("/", "_").replace(".", "_"), source.read(info)),
            )
    return out.getvalue()


@pytest.mark.parametrize(
    ("part", "data"),
    [
        ("xl_worksheets_sheet1_xml", b"<worksheet><sheetData><row><c>"),  # ParseError (a SyntaxError)
        ("xl_workbook_xml", b"\x00<workbook/>"),  # ParseError while loading
        (
            "xl_worksheets_sheet1_xml",
            (
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetViews>'
                b'<sheetView workbookViewId="0"><selection sqzef="A1"/></sheetView></sheetViews></worksheet>'
            ),
        ),  # TypeError: an attribute openpyxl's model does not take
    ],
    ids=["sheet-not-well-formed", "workbook-not-well-formed", "unknown-attribute"],
)
def test_broken_workbook_parts_are_refused_not_crashed_on(part: str, data: bytes) -> None:
    with pytest.raises(MalformedMessage, match=r"^w\.xlsx: "):
        read_grid(_workbook(**{part: data}), filename="w.xlsx")


def test_a_corrupt_deflate_stream_is_refused() -> None:
    """zlib.error from a member whose compressed bytes were damaged."""
    data = bytearray(_workbook())
    start = data.index(b"xl/worksheets/sheet1.xml") + len(b"xl/worksheets/sheet1.xml")
    for offset in range(start + 40, start + 60):
        data[offset] ^= 0x55
    with pytest.raises(MalformedMessage, match=r"^w\.xlsx: "):
        read_grid(bytes(data), filename="w.xlsx")


def _patched(method: int | None = None, flags: int | None = None) -> bytes:
    """The workbook with its sheet's compression method or flag bits rewritten in both headers."""
    data = bytearray(_workbook())
    name = b"xl/worksheets/sheet1.xml"
    patched = 0
    at = data.find(name)
    while at >= 0:
        for offset, signature, flag_at, method_at in ((30, b"PK\x03\x04", 6, 8), (46, b"PK\x01\x02", 8, 10)):
            if data[at - offset : at - offset + 4] == signature:
                base = at - offset
                if method is not None:
                    data[base + method_at : base + method_at + 2] = struct.pack("<H", method)
                if flags is not None:
                    data[base + flag_at : base + flag_at + 2] = struct.pack("<H", flags)
                patched += 1
        at = data.find(name, at + 1)
    assert patched == 2  # the local header and the central directory entry
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "why"),
    [(lambda: _patched(method=99), "compression method 99"), (lambda: _patched(flags=1), "is encrypted")],
    ids=["aes-method", "encrypted"],
)
def test_zip_members_zipfile_cannot_read_are_refused_up_front(data, why: str) -> None:
    """zipfile raised NotImplementedError / RuntimeError for these when openpyxl read the member."""
    with pytest.raises(
        MalformedMessage, match=rf"^w\.xlsx: refused: member xl/worksheets/sheet1\.xml .*{why}"
    ):
        read_grid(data(), filename="w.xlsx")
