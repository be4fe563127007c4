"""Bus record -> canonical event, or a `Poison` verdict saying why it is not one.

A record that is not a valid event can never become one by retrying, so it must not block its
partition: the caller records it and moves on. The verdict's `error` names fields and reasons
only, never input values: the payload may carry patient data, and the error is logged and stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import ValidationError

from schemas.catalogue import EVENT_ADAPTER, Event, parse_event

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hub.ports import BusRecord

MAX_ERROR_CHARS = 2000
_EVENT_ID_MAX = 64


@dataclass(frozen=True, slots=True)
class Poison:
    """Why a record is not an event, and its event id when one could be read."""

    error: str
    event_id: str | None


# Where a record sits (topic, partition, offset) -> what it decoded to.
Decoded: TypeAlias = dict[tuple[str, int, int], Event | Poison]


def decode(record: BusRecord) -> Event | Poison:
    """Parse one record as `schemas.catalogue.parse_event` does (upcasting included).

    Fast path first: an event already at its current schema version validates straight from
    the JSON bytes, about twice as fast as json.loads + validate_python, and that is what nearly
    every record is. Upcasting cannot change such an event (no step starts at a current
    version), so the result is the same. Anything that fails it (an old version, or poison) takes
    the full parse_event path, which decides.
    """
    try:
        return EVENT_ADAPTER.validate_json(record.value)
    except ValueError:  # ValidationError: not a current-version event; parse_event below decides
        pass
    try:
        raw: Any = json.loads(record.value)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return Poison(_describe(exc), None)
    if not isinstance(raw, dict):
        return Poison(f"not a JSON object but a JSON {type(raw).__name__}", None)
    event_id = raw.get("event_id")
    event_id = event_id[:_EVENT_ID_MAX] if isinstance(event_id, str) else None
    try:
        return parse_event(raw)
    # Upcasters are plain dict functions: a malformed old-version event surfaces there as a
    # KeyError or TypeError before pydantic sees it. All three mean "this is not an event".
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        return Poison(_describe(exc), event_id)


def decode_all(records: Iterable[BusRecord]) -> Decoded:
    """Decode each record once, for every projection that reads its topic (events are frozen)."""
    return {(r.topic, r.partition, r.offset): decode(r) for r in records}


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False, include_context=False)
        ]
        text = f"{exc.error_count()} validation error(s): " + "; ".join(parts)
    elif isinstance(exc, json.JSONDecodeError):
        text = f"invalid JSON: {exc.msg} at position {exc.pos}"
    elif isinstance(exc, UnicodeDecodeError):
        text = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]
