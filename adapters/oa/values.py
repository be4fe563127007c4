"""Parsing OA field text: date-times, hours, minutes, approval levels, quantities and parts text.

OA systems write times as `2024-04-01 08:30:00`, `2024/4/1 8:30`, `2024年4月1日 8时30分`, ISO 8601
with an offset, or epoch milliseconds (what Java-based OA products export). A time without an
offset is the site's local time. Everything fails with ValueParseError quoting the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from adapters._files.values import ValueParseError, clean_text, parse_amount

if TYPE_CHECKING:
    from collections.abc import Sequence
    from zoneinfo import ZoneInfo

DATETIME_EXAMPLES = "2024-04-01 08:30:00, 2024/4/1 8:30, 2024年4月1日 8时30分, 2024-04-01T08:30:00+08:00"

_LOCAL = re.compile(
    r"^(?P<y>\d{4})\s*(?:[-/.]|年)\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:(?:\s*|T)(?P<H>\d{1,2})\s*[:时点]\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*[:]?\s*(?P<S>\d{1,2})(?:\.(?P<f>\d{1,6}))?\s*秒?)?)?$"
)
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})?)?$")
_EPOCH = re.compile(r"^(?P<n>\d{10}|\d{13})$")
_YEARS = range(1900, 2200)
_CHINESE_DIGITS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_LEVEL = re.compile(r"^第?\s*(?P<n>\d{1,2}|[一二两三四五六七八九十])\s*(?:级|层|级审批|审批)?$")
_NUMBER_WITH_UNIT = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[^\d\s.]{0,4})$")
_PART_TEXT = re.compile(r"^(?P<name>.+?)(?:\s*[×xX*＊]\s*(?P<q>\d+(?:\.\d+)?)\s*[^\d\s]{0,2})?$")
# Longest texts the patterns above are tried on: no real value comes near, and a hostile one
# (a field of 100,000 spaces) would otherwise keep the regex engine busy for hours.
_MAX_DATETIME_CHARS = 64
_MAX_PART_CHARS = 200
_PART_SEPARATORS = re.compile(r"[;；、\n]+")
_MINUTE_UNITS = {
    "": 1,
    "分钟": 1,
    "分": 1,
    "min": 1,
    "mins": 1,
    "m": 1,
    "小时": 60,
    "时": 60,
    "h": 60,
    "天": 1440,
}


def parse_datetime(text: str, tz: ZoneInfo, extra_formats: Sequence[str] = ()) -> datetime:
    """A date-time in any common OA form, UTC-aware; naive values are local to `tz`."""
    value = clean_text(text)
    if not value:
        raise ValueParseError("empty date-time")
    if len(value) > _MAX_DATETIME_CHARS:  # _LOCAL backtracks polynomially over long runs of spaces
        raise ValueParseError(f"{value[:40]!r}… is not a date-time: {len(value):,} characters")
    epoch = _EPOCH.match(value)
    if epoch:
        number = int(epoch["n"])
        seconds = number / 1000 if len(epoch["n"]) == 13 else number
        return _checked(text, datetime.fromtimestamp(seconds, UTC))
    for pattern in (_LOCAL, _COMPACT):
        match = pattern.match(value)
        if match:
            return _local(text, match, tz)
    parsed = _isoformat(value) or _strptime(value, extra_formats)
    if parsed is None:
        tried = DATETIME_EXAMPLES + "".join(", " + f for f in extra_formats)
        raise ValueParseError(f"{text.strip()!r} is not a date-time (expected one of: {tried})")
    return _checked(text, parsed if parsed.tzinfo else parsed.replace(tzinfo=tz))


def parse_end_of_day(text: str, tz: ZoneInfo, extra_formats: Sequence[str] = ()) -> datetime:
    """Like parse_datetime, but a bare date means the end of that day (a due date is met all day)."""
    moment = parse_datetime(text, tz, extra_formats)
    local = moment.astimezone(tz)
    if _is_bare_date(clean_text(text)) and local.hour == local.minute == local.second == 0:
        return _checked(text, local + timedelta(days=1, seconds=-1))
    return moment


def _is_bare_date(value: str) -> bool:
    local = _LOCAL.match(value)
    compact = _COMPACT.match(value)
    return (local is not None and local["H"] is None) or (compact is not None and compact["H"] is None)


def _local(text: str, match: re.Match[str], tz: ZoneInfo) -> datetime:
    parts = match.groupdict()
    fraction = (parts.get("f") or "").ljust(6, "0")
    try:
        naive = datetime(  # noqa: DTZ001 - made aware on the next line, in the site's zone
            int(parts["y"]), int(parts["m"]), int(parts["d"]),
            int(parts["H"] or 0), int(parts["M"] or 0), int(parts["S"] or 0), int(fraction),
        )  # fmt: skip
    except ValueError as exc:
        raise ValueParseError(f"{text.strip()!r} is not a valid date-time: {exc}") from exc
    return _checked(text, naive.replace(tzinfo=tz))


def _isoformat(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None  # not ISO 8601; the mapping's formats are tried next


def _strptime(value: str, formats: Sequence[str]) -> datetime | None:
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt)  # noqa: DTZ007 - naive results get the site's zone
        except ValueError:
            continue  # the next format may fit; the caller lists what was tried
    return None


def _checked(text: str, moment: datetime) -> datetime:
    if moment.year not in _YEARS:
        raise ValueParseError(
            f"{text.strip()!r}: year {moment.year} is outside {_YEARS.start}-{_YEARS.stop - 1}"
        )
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueParseError(f"{text.strip()!r} cannot be placed in time: {exc}") from exc


def parse_hours(text: str) -> Decimal:
    """Labour hours such as `3.5`, `3.5小时` or `2h`; never negative."""
    hours = parse_amount(text, suffixes=("小时", "工时", "h", "H"), currency_marks=False)
    if hours < 0:
        raise ValueParseError(f"{text.strip()!r} is negative")
    return hours


def parse_minutes(text: str) -> int:
    """Downtime as whole minutes: `90`, `90分钟`, `1.5小时` or `2天`; halves round up."""
    value = clean_text(text).replace(",", "")
    match = _NUMBER_WITH_UNIT.match(value)
    unit = match["unit"].casefold() if match else None
    if match is None or unit not in _MINUTE_UNITS:
        raise ValueParseError(f"{text.strip()!r} is not a duration (expected e.g. 90, 90分钟, 1.5小时)")
    minutes = Decimal(match["n"]) * _MINUTE_UNITS[unit]
    return int(minutes.to_integral_value(rounding=ROUND_HALF_UP))


def parse_level(text: str) -> int:
    """An approval level: `2`, `2级`, `二级`, `第二级审批`."""
    value = clean_text(text)
    match = _LEVEL.match(value)
    if match is None:
        raise ValueParseError(f"{text.strip()!r} is not an approval level (expected e.g. 1, 2级, 二级)")
    number = match["n"]
    level = int(number) if number.isdigit() else _CHINESE_DIGITS[number]
    if level < 1:
        raise ValueParseError(f"{text.strip()!r}: approval levels start at 1")
    return level


def parse_quantity(text: str) -> Decimal:
    """A positive quantity, with an optional unit word after it (`2`, `2个`, `1套`)."""
    match = _NUMBER_WITH_UNIT.match(clean_text(text))
    if match is None:
        raise ValueParseError(f"{text.strip()!r} is not a quantity (expected e.g. 2 or 2个)")
    quantity = Decimal(match["n"])
    if quantity <= 0:
        raise ValueParseError(f"{text.strip()!r}: a part's quantity must be more than 0")
    return quantity


@dataclass(frozen=True, slots=True)
class PartText:
    """One part written as text: `主板×1`, `SpO2探头 x2`, or a bare name (quantity 1)."""

    name: str
    quantity: Decimal


def parse_parts_text(text: str) -> list[PartText]:
    """Parts written in one text field, separated by ；/;/、 or new lines."""
    parts: list[PartText] = []
    for chunk in _PART_SEPARATORS.split(text):
        item = chunk.strip()
        if not item:
            continue
        if len(item) > _MAX_PART_CHARS:  # _PART_TEXT backtracks quadratically over long runs of spaces
            raise ValueParseError(f"{item[:40]!r}…: a part longer than {_MAX_PART_CHARS} characters")
        match = _PART_TEXT.match(clean_text(item))
        if match is None:  # the pattern accepts any non-empty text; kept for the type checker
            raise ValueParseError(f"{item!r} is not a part")
        quantity = Decimal(match["q"]) if match["q"] else Decimal(1)
        if quantity <= 0:
            raise ValueParseError(f"{item!r}: a part's quantity must be more than 0")
        parts.append(PartText(name=match["name"].strip(), quantity=quantity))
    return parts
