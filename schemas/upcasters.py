"""Upcasters: pure dict -> dict functions that lift a stored old event to the current version.

Old events on the log are never rewritten; readers upcast on the way in. Register each step
`(event_type, from_version)`; `upcast` applies steps until no step matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def register(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def decorate(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return decorate


def upcast(data: dict[str, Any]) -> dict[str, Any]:
    """Apply registered steps to an event dict until it is at the newest version."""
    while (step := UPCASTERS.get((str(data.get("type")), int(data.get("schema_version", 1))))) is not None:
        data = step(data)
    return data


def _dept(name: object) -> dict[str, Any] | None:
    return {"name": name} if name else None


@register("asset.relocated", 1)
def upcast_asset_relocated_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 carried flat `from_department` / `to_department` / `location` strings (the first HRP
    prototype). v2 moves department and place into `LocationRef`s so codes can travel with names."""
    old = data["payload"]
    payload: dict[str, Any] = {
        "to": {"department": _dept(old.get("to_department")) or {}, "location": old.get("location")},
        "reason": old.get("reason"),
        "document_no": old.get("document_no"),
    }
    if old.get("from_department"):
        payload["from"] = {"department": _dept(old["from_department"])}
    return {**data, "schema_version": 2, "payload": payload}
