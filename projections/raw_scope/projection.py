"""Which departments each raw message concerns (projection `raw_scope`), for department-scoped keys.

A raw message (an HL7 message, an export file, a FHIR resource) has no department of its own:
its events name departments (every `DeptRef` in their payloads: a consumption's place, a
device's home, a loan's borrower and lender, a work order's reporter). This read model keeps,
per raw reference, each department its events named, so the API can decide whether a key
scoped to D may see the raw message or its dead letters.

The rule (`owned_by`): a raw message is D's when its events name at least one department and
every department they name is D. A message naming several departments (an HRP ledger, a loan
between two wards) or none (an unmapped ADT, a message whose every unit failed) cannot be
attributed to one department, so a scoped key does not see it: the raw bytes hold every row.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, NaiveDatetime
from sqlalchemy import Column, MetaData, String, Table, select

from projections.runtime.sqltypes import UtcDateTime
from projections.runtime.upsert import chunks, in_values, upsert
from schemas._base import DeptRef
from topics.catalogue import CANONICAL_TOPICS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy import Connection

    from schemas.catalogue import Event

NAME = "raw_scope"
METADATA = MetaData()
_SEP = "\x1f"  # between code and name in the key column: neither holds control characters

departments = Table(
    f"{NAME}_departments",
    METADATA,
    Column("raw_ref", String(200), primary_key=True),
    Column("dept_key", String(300), primary_key=True),  # code + _SEP + name: nullable parts, one key
    Column("department_code", String(64)),
    Column("department_name", String(200)),
)

# The events each raw message became (GET /messages/{raw_ref}): one row per canonical event.
message_events = Table(
    f"{NAME}_events",
    METADATA,
    Column("raw_ref", String(200), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)


def named_departments(value: Any) -> Iterable[DeptRef]:
    """Every DeptRef with a code or a name inside `value` (a payload model, list or dict)."""
    if isinstance(value, DeptRef):
        if value.code or value.name:
            yield value
    elif isinstance(value, BaseModel):
        cls = type(value)
        names = _WALKED.get(cls)
        if names is None:
            names = _WALKED[cls] = tuple(n for n, f in cls.model_fields.items() if _may_hold(f.annotation))
        for name in names:
            yield from named_departments(getattr(value, name))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from named_departments(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from named_departments(v)


# Per model class, the fields that can hold a DeptRef: a device's details have ~25 fields, most
# of them text, numbers and dates, and walking each (a generator per field, every event) was
# most of this projection's cost.
_WALKED: dict[type[BaseModel], tuple[str, ...]] = {}
# AwareDatetime and NaiveDatetime: pydantic's markers for a datetime (not its subclasses).
_LEAVES = (
    str,
    int,
    float,
    bytes,
    Decimal,
    date,
    time,
    timedelta,
    UUID,
    Enum,
    type(None),
    AwareDatetime,
    NaiveDatetime,
)
_WALKED_CONTAINERS = (list, tuple, dict)  # what `named_departments` walks into


def _may_hold(annotation: Any) -> bool:
    """False only when every type `annotation` admits is a leaf (text, number, time, enum...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _may_hold(get_args(annotation)[0])
    if origin is Literal:
        return False
    if origin is Union or origin is UnionType:
        return any(_may_hold(a) for a in get_args(annotation))
    if origin in _WALKED_CONTAINERS and get_args(annotation):
        # A list or tuple of leaves (a block's hundreds of [time, value] readings) holds no
        # DeptRef: not walked item by item. A dict's values are what `named_departments` walks.
        args = get_args(annotation)[1:] if origin is dict else get_args(annotation)
        return any(_may_hold(a) for a in args if a is not Ellipsis)
    return not (isinstance(annotation, type) and issubclass(annotation, _LEAVES))


class RawScope:
    """Raw reference -> departments its events name (see the module docstring)."""

    name = NAME
    topics = tuple(spec.name for spec in CANONICAL_TOPICS)
    metadata = METADATA

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for event in events:
            raw_ref = event.source.raw_ref
            if not raw_ref:
                continue
            for dept in named_departments(getattr(event, "payload", None)):
                key = f"{dept.code or ''}{_SEP}{dept.name or ''}"
                rows[(raw_ref, key)] = {
                    "raw_ref": raw_ref,
                    "dept_key": key,
                    "department_code": dept.code,
                    "department_name": dept.name,
                }
        # Insert-only: a fact about a raw message never changes, so any order and any repeat converge.
        upsert(conn, departments, list(rows.values()), key=("raw_ref", "dept_key"), update=False)
        became: dict[tuple[str, str], dict[str, Any]] = {}
        for e in events:
            if raw_ref := e.source.raw_ref:
                event_id = str(e.event_id)  # once: UUID.__str__ is not free
                became[(raw_ref, event_id)] = {
                    "raw_ref": raw_ref,
                    "event_id": event_id,
                    "event_type": e.type,
                    "subject": e.subject,
                    "recorded_at": e.recorded_at,
                }
        # In key order: each page of the key is visited once per batch (event ids are random).
        upsert(
            conn,
            message_events,
            [became[k] for k in sorted(became)],
            key=("raw_ref", "event_id"),
            update=False,
        )


Named = list[tuple[str | None, str | None]]  # (code, name) of each department named


def departments_of(conn: Connection, raw_refs: Sequence[str]) -> dict[str, Named]:
    """raw_ref -> each department its events named (refs naming none are absent)."""
    out: dict[str, Named] = {}
    d = departments.c
    for chunk in chunks(conn, list(dict.fromkeys(raw_refs))):
        rows = conn.execute(
            select(d.raw_ref, d.department_code, d.department_name).where(in_values(conn, d.raw_ref, chunk))
        )
        for ref, code, name in rows:
            out.setdefault(ref, []).append((code, name))
    return out


def owned_by(named: Sequence[tuple[str | None, str | None]], department: str) -> bool:
    """Whether a raw message naming `named` is `department`'s alone (matched by code or name)."""
    return bool(named) and all(department in (code, name) for code, name in named)


def events_of(conn: Connection, raw_ref: str) -> list[dict[str, Any]]:
    """The canonical events `raw_ref` became, in the order they were recorded."""
    e = message_events.c
    rows = conn.execute(
        select(e.event_id, e.event_type, e.subject, e.recorded_at)
        .where(e.raw_ref == raw_ref)
        .order_by(e.recorded_at, e.event_id)
    )
    return [dict(r._mapping) for r in rows]


def refs_of_department(conn: Connection, department: str) -> list[str]:
    """The raw references that are `department`'s alone (code or name; see `owned_by`)."""
    d = departments.c
    named = [
        str(r[0])
        for r in conn.execute(
            select(d.raw_ref)
            .where((d.department_code == department) | (d.department_name == department))
            .distinct()
        )
    ]
    every = departments_of(conn, named)
    return [ref for ref in named if owned_by(every.get(ref, []), department)]
