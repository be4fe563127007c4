"""Typed reads of fhir.resources values: text, codings, references, dates, quantities.

fhir.resources models are untyped to mypy (and differ between R5 and R4B in places), so the
translators read them only through these helpers, which return plain typed values or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None


def text(value: Any) -> str | None:
    """A non-blank string, stripped; anything else is None."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def as_list(value: Any) -> list[Any]:
    """A repeating element as a list (R5 made some R4B singletons lists; absent is empty)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def codings(concept: Any) -> list[Coding]:
    """The codings of a CodeableConcept (or of a CodeableReference's concept)."""
    if concept is None:
        return []
    inner = getattr(concept, "concept", None)
    if inner is not None and getattr(concept, "coding", None) is None:
        concept = inner
    return [
        Coding(
            text(getattr(c, "system", None)),
            text(getattr(c, "code", None)),
            text(getattr(c, "display", None)),
        )
        for c in as_list(getattr(concept, "coding", None))
    ]


def concept_text(concept: Any) -> str | None:
    """What a person would call it: the concept's text, else a display, else a code."""
    if concept is None:
        return None
    inner = getattr(concept, "concept", None)
    if inner is not None:
        concept = inner
    label = text(getattr(concept, "text", None))
    if label:
        return label
    found = codings(concept)
    return next((c.display for c in found if c.display), None) or next(
        (c.code for c in found if c.code), None
    )


def concept_words(concept: Any) -> list[str]:
    """Every code, display and the text of a concept, for matching against a mapping's words."""
    words = [w for c in codings(concept) for w in (c.code, c.display) if w]
    label = text(getattr(concept, "text", None)) if concept is not None else None
    return [*words, label] if label else words


def reference_keys(reference: Any) -> list[str]:
    """What a Reference can be matched by: its reference, its identifier's value, its display."""
    if reference is None:
        return []
    identifier = getattr(reference, "identifier", None)
    keys = [
        text(getattr(reference, "reference", None)),
        text(getattr(identifier, "value", None)) if identifier is not None else None,
        text(getattr(reference, "display", None)),
    ]
    return [k for k in keys if k]


def reference_label(reference: Any) -> str | None:
    """A Reference as people read it: display, else identifier value, else the reference."""
    if reference is None:
        return None
    identifier = getattr(reference, "identifier", None)
    return (
        text(getattr(reference, "display", None))
        or (text(getattr(identifier, "value", None)) if identifier is not None else None)
        or text(getattr(reference, "reference", None))
    )


def reference_target(reference: Any) -> tuple[str, str] | None:
    """(type, id) of a literal reference `Type/id` or `.../Type/id` (a URL); None otherwise."""
    value = text(getattr(reference, "reference", None)) if reference is not None else None
    if not value or value.startswith("#"):
        return None
    parts = value.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1]


def base_url(url: str | None) -> str | None:
    """The server base of an absolute `http(s)://.../<Type>/<id>[/_history/<v>]` URL; None otherwise
    (a relative reference, or a `urn:uuid:` fullUrl, names no server)."""
    if not url or not url.startswith(("http://", "https://")):
        return None
    parts = url.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 5 or not parts[-2][:1].isupper():  # scheme, "", host, Type, id at the least
        return None
    return "/".join(parts[:-2])


def contained(resource: Any, reference: Any) -> Any | None:
    """The contained resource a `#id` reference points at, if the resource holds it."""
    value = text(getattr(reference, "reference", None)) if reference is not None else None
    if not value or not value.startswith("#"):
        return None
    wanted = value[1:]
    return next(
        (c for c in as_list(getattr(resource, "contained", None)) if getattr(c, "id", None) == wanted), None
    )


def moment(value: Any, tz: ZoneInfo) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC datetime.

    A date (or a partial `2024-06` / `2024`) is midnight of its first day at the site; FHIR
    itself refuses a time without a zone, so an aware datetime is the only other case.
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=tz)
        return aware.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz).astimezone(UTC)
    if isinstance(value, str):
        parts = value.split("-")
        try:
            year = int(parts[0])
            month = int(parts[1]) if len(parts) > 1 else 1
            return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        except (ValueError, IndexError):
            return None
    return None


def calendar_date(value: Any) -> date | None:
    """The calendar date of a FHIR date/dateTime (a partial date has none)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def quantity(value: Any) -> Decimal | None:
    """A Quantity's value as a Decimal (fhir.resources keeps FHIR decimals exact)."""
    raw = getattr(value, "value", None) if value is not None else None
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int | float):
        return Decimal(str(raw))
    return None


def identifier_values(identifiers: Any) -> Iterator[tuple[str | None, str, list[Coding]]]:
    """(system, value, type codings) of each Identifier that has a value."""
    for identifier in as_list(identifiers):
        value = text(getattr(identifier, "value", None))
        if value:
            yield text(getattr(identifier, "system", None)), value, codings(getattr(identifier, "type", None))
