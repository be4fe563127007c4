"""HL7 timestamps (TS/DTM) -> aware UTC datetimes.

`YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`. A timestamp without a zone is read in the
site's zone (the HIS clock is the hospital's wall clock). Chinese HIS builds also write
`YYYY-MM-DD HH:MM:SS` into TS fields; that form is accepted too, since refusing it would
dead-letter whole feeds for a formatting habit that is unambiguous.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

_TS = re.compile(
    r"^(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})"
    r"(?:\.(?P<f>\d{1,4}))?)?)?)?)?)?(?P<z>[+-]\d{4})?$"
)
_DASHED = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?:[ T](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})"
    r"(?:\.(?P<f>\d{1,6}))?)?)?(?P<z>[+-]\d{2}:?\d{2})?$"
)


class TimestampError(ValueError):
    """The text is not an HL7 timestamp; the message quotes it (timestamps are not patient data here)."""


def parse_ts(text: str, tz: ZoneInfo) -> datetime:
    """Parse an HL7 TS/DTM value into an aware UTC datetime; naive values are read in `tz`."""
    value = text.strip()
    match = _TS.match(value) or _DASHED.match(value)
    if match is None:
        raise TimestampError(f"{value!r} is not an HL7 timestamp (YYYYMMDD[HHMM[SS]][+ZZZZ])")
    parts = match.groupdict()
    fraction = parts["f"] or ""
    try:
        local = datetime(  # noqa: DTZ001 - the zone is attached just below
            int(parts["y"]),
            int(parts["mo"] or 1),
            int(parts["d"] or 1),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            int(fraction.ljust(6, "0")[:6]) if fraction else 0,
        )
    except ValueError as exc:
        raise TimestampError(f"{value!r} is not a valid date and time: {exc}") from exc
    zone = parts["z"]
    if zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            raise TimestampError(f"{value!r} has an impossible zone offset {zone}")
        return local.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)
    return local.replace(tzinfo=tz).astimezone(UTC)
