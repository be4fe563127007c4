"""Query parameter types every route shares: bounded paging, ISO dates and times, day windows.

What the OpenAPI document says a parameter accepts is what the route accepts: pydantic's lax
mode would take `on=0` as 1970-01-01 and `to=0.5` as a Unix time, and an unbounded `offset` of
10^30 reached the database as an integer overflow (a 500). These types refuse both with a 422
naming the parameter, and document the bounds.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AwareDatetime, BeforeValidator

MAX_OFFSET = 1_000_000_000  # far beyond any read model's size; far below SQLite's 64-bit limit
MAX_WINDOW_DAYS = 3660
# 30d, 2w or 30 (days). Routes document it and check it themselves (window_days), so a bad
# window gets a sentence that says what is expected, not a regular expression.
WINDOW_PATTERN = r"^\s*\d{1,4}\s*[dwDW]?\s*$"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_WINDOW = re.compile(WINDOW_PATTERN)


def _iso_date(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("expected an ISO 8601 date-time such as 2024-07-01T08:00:00+08:00")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
IsoAwareDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")]


def window_days(text: str) -> int:
    """`30d`, `2w` or `30` (days) -> days; ValueError for anything else."""
    if not _WINDOW.match(text):
        raise ValueError(f"within={text!r}: expected a number of days such as 30d or 2w")
    stripped = text.strip().lower()
    unit = stripped[-1] if stripped[-1] in "dw" else "d"
    days = int(stripped.rstrip("dw").strip()) * (7 if unit == "w" else 1)
    if days > MAX_WINDOW_DAYS:
        raise ValueError(f"within={text!r}: at most {MAX_WINDOW_DAYS} days")
    return days
