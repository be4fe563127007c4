"""One resource being translated, and what translating it can give: events, a skip, or a refusal.

Every per-resource translator is `(Unit) -> Result`. A `Unit` knows where the resource sits
(`resource`, or `entry:<i>` in a Bundle), how its events are identified, and the site's mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.fhir.issues import Issue
from adapters.fhir.values import moment, reference_keys, reference_label, text
from schemas._base import LocationRef, SourceSystem
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from adapters.base import TranslateContext
    from adapters.fhir.issues import IssueCode
    from adapters.fhir.mapping import FhirMapping, LocationEntry
    from adapters.fhir.versions import FhirVersion
    from hub.ports import RawRecord
    from schemas.envelope import EventBase, Source


@dataclass(frozen=True, slots=True)
class Events:
    """What a resource became, plus notes on what of it could not be expressed (kept as skipped)."""

    events: tuple[EventBase, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skip:
    """A valid resource deliberately not turned into events (archived and counted)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """A valid FHIR resource the hub cannot translate as it stands, and why (dead-lettered)."""

    issues: tuple[Issue, ...]


Result = Events | Skip | Refuse


@dataclass(frozen=True, slots=True)
class Place:
    """Where a Location reference points for the hub, and whether it is a department or a store.

    `ref` is the place as devices get it (with its place text); `stock` as stock events name it.
    """

    ref: LocationRef
    kind: str  # "department" | "store"
    stock: LocationRef


@dataclass(frozen=True, slots=True)
class Unit:
    """One resource to translate, with everything its events need."""

    resource: Any
    resource_type: str
    version: FhirVersion
    position: str
    key: str
    raw: RawRecord
    source: Source
    mapping: FhirMapping
    ctx: TranslateContext
    base_url: str | None = None  # of the Bundle entry's fullUrl: the sender's server
    siblings: dict[str, Any] = field(default_factory=dict)  # `<Type>/<id>` -> resource, same Bundle
    problems: list[Issue] = field(default_factory=list)

    def sender(self) -> str | None:
        """Who a server-local id (`Device/1`) belongs to: the entry's base URL, else the resource's
        meta.source, else the mapping's `sender`; None when nothing says it."""
        if self.base_url:
            return self.base_url
        meta = getattr(self.resource, "meta", None)
        source = text(getattr(meta, "source", None)) if meta is not None else None
        return source or self.mapping.sender

    def event_id(self, suffix: str | int) -> UUID:
        """uuid5 over (fhir, message id, `<Type>/<id>:<suffix>`): the same resource, the same ids."""
        return event_id_for(SourceSystem.FHIR.value, self.raw.message_id, f"{self.key}:{suffix}")

    def occurred(self, *candidates: Any) -> datetime:
        """The first candidate that is a FHIR date/time, else when the hub received the message."""
        for candidate in candidates:
            when = moment(candidate, self.ctx.tz)
            if when is not None:
                return when
        meta = getattr(self.resource, "meta", None)
        updated = moment(getattr(meta, "lastUpdated", None), self.ctx.tz) if meta is not None else None
        return updated or self.raw.received_at

    def place(self, reference: Any, path: str) -> Place | None:
        """Resolve a Location reference through the mapping; None (and a problem) when strict and unknown."""
        if reference is None:
            return None
        keys = reference_keys(reference)
        entry: LocationEntry | None = self.mapping.location(keys)
        if entry is not None:
            return Place(self.mapping.location_ref(entry), entry.kind, self.mapping.stock_ref(entry))
        department = next((d for d in (self.mapping.department(k) for k in keys) if d is not None), None)
        if department is not None:
            ref = LocationRef(department=department.ref())
            return Place(ref, "department", ref)
        label = reference_label(reference)
        if self.mapping.strict_locations:
            reason = f"location {label!r} is not in the mapping's locations (strict_locations is on)"
            self.problems.append(Issue("value", path, reason))
            return None
        unknown = LocationRef(location=label)
        return Place(unknown, "store", unknown)

    def refuse(self, code: IssueCode, path: str, reason: str) -> None:
        """Record a problem; the translator returns `Refuse(unit.problems)` once it has looked at all."""
        self.problems.append(Issue(code, path, reason))

    def result(self, events: list[EventBase], notes: list[str] | None = None) -> Result:
        """The events, unless a problem was recorded: then the whole resource is refused."""
        if self.problems:
            return Refuse(tuple(self.problems))
        return Events(tuple(events), tuple(notes or ()))
