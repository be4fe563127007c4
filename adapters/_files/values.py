"""Parsing cell text into dates and amounts, with one precise message per refusal.

Exports write the same date five ways (2019-3-5, 2019/03/05, 20190305, 2019.03.05, 2019年3月5日)
and amounts with thousands separators, ¥/￥ signs, full-width digits and a trailing 元. Text is
NFKC-normalised first, which folds full-width digits and punctuation (０-９, ，．／￥) to ASCII.
Amounts are Decimal, never float: a ledger must add up to the fen. Each number has one form,
whatever the export wrote: `268000`, `268000.00` (CSV) and the float 268000.0 (an XLSX cell) are
all `Decimal("268000")`, `12.50` is `12.5`. The same file saved as CSV or XLSX then gives the same
events, byte for byte, and a re-export in the other format is no change to the snapshot differ.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

DATE_EXAMPLES = "2019-03-05, 2019/3/5, 20190305, 2019.03.05, 2019年3月5日"

_SEPARATED = re.compile(
    r"^(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$"  # a time part, as Excel adds, is ignored
)
_CHINESE = re.compile(r"^(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?$")
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
# Excel stores dates as days since 1899-12-30 (the 1900 leap-year bug folded in). Only 5-digit
# serials are taken (1927-05-18 to 2173-10-14): a 4-digit number is more likely a bare year.
_SERIAL = re.compile(r"^(?P<days>\d{5})(?:\.\d+)?$")
_EXCEL_EPOCH = date(1899, 12, 30)

_MAX_AMOUNT_DIGITS = 18  # integer digits of an amount: 10^18 yuan is beyond any ledger
_AMOUNT = re.compile(r"^(?P<sign>[-+]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?$")
_CURRENCY_PREFIXES = ("¥", "RMB", "CNY", "人民币")


class ValueParseError(ValueError):
    """A cell's text is not a value of the expected kind; the message quotes it and says why."""


def clean_text(text: str) -> str:
    """NFKC-fold and strip a cell: full-width forms become ASCII, non-breaking spaces go."""
    return unicodedata.normalize("NFKC", text).strip()


def parse_date(text: str, extra_formats: Sequence[str] = ()) -> date:
    """Parse a date cell in any common export form, then in the mapping's `extra_formats`."""
    value = clean_text(text)
    if not value:
        raise ValueParseError("empty date")
    for pattern in (_SEPARATED, _CHINESE, _COMPACT):
        match = pattern.match(value)
        if match:
            return _ymd(value, int(match["y"]), int(match["m"]), int(match["d"]))
    serial = _SERIAL.match(value)
    if serial:
        return _EXCEL_EPOCH + timedelta(days=int(serial["days"]))
    for fmt in extra_formats:
        try:
            return datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue  # the next format may fit; the error below lists what was tried
    tried = f"{DATE_EXAMPLES}{''.join(', ' + f for f in extra_formats)}"
    raise ValueParseError(f"{text.strip()!r} is not a date (expected one of: {tried})")


def _ymd(text: str, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueParseError(f"{text!r} is not a valid calendar date: {exc}") from exc


def parse_amount(text: str, *, suffixes: Sequence[str] = ("元",), currency_marks: bool = True) -> Decimal:
    """Parse an amount such as `￥1,234,567.80`, `35800元` or `１２８００`, exactly, as Decimal.

    Thousands separators must group by three (`1,23,4` is refused: it is more likely a typo or
    a list than a number). A negative amount may be written `-1,200.00` or `(1,200.00)`.
    """
    value = clean_text(text)
    original = text.strip()
    if not value:
        raise ValueParseError("empty amount")
    negative = value.startswith("(") and value.endswith(")")
    if negative:
        value = value[1:-1].strip()
    if currency_marks:
        for prefix in _CURRENCY_PREFIXES:
            if value.startswith(prefix):
                value = value[len(prefix) :].strip()
                break
    for suffix in suffixes:
        if value.endswith(suffix):
            value = value[: -len(suffix)].strip()
            break
    match = _AMOUNT.match(value)
    if not match:
        raise ValueParseError(f"{original!r} is not a number (expected e.g. 12,800.00, ￥12800 or 12800元)")
    digits = match["int"].replace(",", "")
    if len(digits.lstrip("0")) > _MAX_AMOUNT_DIGITS:
        # Past the decimal context's precision arithmetic fails; no real amount has that many digits.
        raise ValueParseError(f"{original[:40]!r}: {len(digits)} digits is too large for an amount")
    amount = Decimal(f"{match['sign']}{digits}{match['frac'] or ''}")
    return canonical_decimal(-amount if negative else amount)


def canonical_decimal(value: Decimal) -> Decimal:
    """The one form of a number: no trailing fraction zeros, integers with exponent 0, never `-0`.

    `Decimal.normalize` alone would write 268000 as `2.68E+5`; integral values are re-quantized.
    """
    if not value:
        return Decimal(0)
    normal = value.normalize()
    try:
        return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal
    except InvalidOperation:  # more integer digits than the context's precision: keep the exponent form
        return normal


def looks_numeric(text: str) -> bool:
    """True when `text` parses as an amount: used to recognise totals rows."""
    try:
        parse_amount(text)
    except ValueParseError:
        return False
    return True
