"""One short line saying what an event says, for history listings.

Generic over the catalogue: the payload's fields in declaration order, empty ones skipped, the
shapes the schemas share (department, place, money, identifier) written compactly, nested
models flattened (`details.name=...`). Pseudonymised patient tokens are left out: a history
listing is read by people who need the device's story, not the patient's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.envelope import EventBase

MAX_PARTS = 5
MAX_VALUE_CHARS = 60
MAX_LIST_ITEMS = 3
_LEFT_OUT = frozenset({"patient_token", "previous"})


def summarise(event: EventBase) -> str:
    """`key=value; ...` for the first few non-empty payload fields of `event`."""
    payload = getattr(event, "payload", None)
    if payload is None:
        return ""
    data = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    parts: list[str] = []
    for key, value in _leaves(data, ""):
        parts.append(f"{key}={_clip(value)}")
        if len(parts) == MAX_PARTS:
            break
    return "; ".join(parts)


def _leaves(data: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in _LEFT_OUT or value in ({}, [], ""):
            continue
        name = f"{prefix}{key}"
        compact = _compact(value)
        if compact is not None:
            out.append((name, compact))
        elif isinstance(value, dict):
            out.extend(_leaves(value, f"{name}."))
    return out


def _compact(value: Any) -> str | None:  # noqa: PLR0911  (one branch per shared shape)
    """The compact text of a scalar, list or shared shape; None for any other nested model."""
    if isinstance(value, list):
        items = [_compact(v) or str(v) for v in value[:MAX_LIST_ITEMS]]
        more = f" +{len(value) - MAX_LIST_ITEMS} more" if len(value) > MAX_LIST_ITEMS else ""
        return ", ".join(items) + more
    if not isinstance(value, dict):
        return str(value)
    keys = set(value)
    if keys <= {"code", "name"}:
        return _dept(value)
    if keys <= {"department", "location"}:
        return " ".join(p for p in (_dept(value.get("department", {})), value.get("location")) if p)
    if "amount" in keys and keys <= {"amount", "currency"}:
        return f"{value['amount']} {value.get('currency', '')}".strip()
    if keys == {"scheme", "value"}:
        return f"{value['scheme']}:{value['value']}"
    return None


def _dept(value: dict[str, Any]) -> str:
    code, name = value.get("code"), value.get("name")
    if code and name:
        return f"{name} ({code})"
    return str(name or code or "")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
