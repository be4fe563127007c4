"""Search answers: paging (`_count`, `_offset`), `_lastUpdated`, searchset Bundles, OperationOutcome.

A searchset Bundle carries `total`, a `self` link and `next`/`previous` links that repeat the
search with another `_offset` (absolute URLs, as FHIR clients follow them as given).
`_lastUpdated` takes the FHIR date prefixes (eq, ge, gt, le, lt; none = eq) on a date or a
dateTime: each value is a range at its precision (a day, a second), read in the site's zone when
it has no offset, and several values narrow one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request

from hub.api.fhir.wire import FhirError
from hub.api.params import MAX_OFFSET

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import tzinfo

MAX_COUNT = 500
DEFAULT_COUNT = 50
_PREFIXES = ("eq", "ge", "gt", "le", "lt")


def invalid(parameter: str, diagnostics: str) -> FhirError:
    return FhirError(400, "invalid", diagnostics, parameter)


def not_found(reference: str) -> FhirError:
    return FhirError(404, "not-found", f"{reference} is not known")


def outcome(code: str, diagnostics: str, *, expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome with one error issue (`expression` names the element or parameter)."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@dataclass(frozen=True, slots=True)
class Paging:
    count: int
    offset: int


def get_paging(
    count: Annotated[str, Query(alias="_count", description=f"Page size, 1 to {MAX_COUNT}")] = str(
        DEFAULT_COUNT
    ),
    offset: Annotated[
        str, Query(alias="_offset", description="Resources to skip (the paging links set it)")
    ] = "0",
) -> Paging:
    if not count.isdigit() or not 1 <= int(count) <= MAX_COUNT:
        raise invalid("_count", f"_count={count!r}: a whole number from 1 to {MAX_COUNT}")
    if not offset.isdigit() or int(offset) > MAX_OFFSET:
        raise invalid("_offset", f"_offset={offset!r}: a whole number from 0 to {MAX_OFFSET:,}")
    return Paging(int(count), int(offset))


PagingDep = Annotated[Paging, Depends(get_paging)]


def searchset(
    request: Request, resources: Sequence[dict[str, Any]], *, total: int, paging: Paging
) -> dict[str, Any]:
    """A searchset Bundle of `resources` (already in the answer's release) with paging links."""
    base = str(request.base_url).rstrip("/")
    path = request.url.path
    asked = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]

    def page(offset: int) -> str:
        return f"{base}{path}?{urlencode([*asked, ('_offset', str(offset))])}"

    links = [{"relation": "self", "url": page(paging.offset)}]
    if paging.offset + paging.count < total:
        links.append({"relation": "next", "url": page(paging.offset + paging.count)})
    if paging.offset > 0:
        links.append({"relation": "previous", "url": page(max(0, paging.offset - paging.count))})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def updated_range(
    values: Sequence[str], zone: tzinfo, *, parameter: str = "_lastUpdated"
) -> tuple[datetime | None, datetime | None]:
    """Date search values as one half-open range [from, to); FhirError 400 naming the parameter."""
    start: datetime | None = None
    end: datetime | None = None
    for value in values:
        prefix, text = (value[:2], value[2:]) if value[:2] in _PREFIXES else ("eq", value)
        low, high = _bounds(text, zone, parameter)
        lower, upper = {
            "eq": (low, high),
            "ge": (low, None),
            "gt": (high, None),
            "le": (None, high),
            "lt": (None, low),
        }[prefix]
        if lower is not None:
            start = lower if start is None else max(start, lower)
        if upper is not None:
            end = upper if end is None else min(end, upper)
    return start, end


def _bounds(text: str, zone: tzinfo, parameter: str) -> tuple[datetime, datetime]:
    try:
        if len(text) == 10:
            day = datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
            return day.astimezone(UTC), (day + timedelta(days=1)).astimezone(UTC)
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        moment = moment.astimezone(UTC).replace(microsecond=0)
        return moment, moment + timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise invalid(parameter, f"{parameter}={text!r}: [eq|ge|gt|le|lt]YYYY-MM-DD or a dateTime") from None
