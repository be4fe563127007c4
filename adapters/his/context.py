"""What every HL7 message handler needs while translating one message: lookups, times, and the
lists it fills (events, failures, skipped units).

A problem with one unit (an FT1, a device, an EQU, an IVT) is raised as `UnitProblem` and turned
into a `Failure` naming segment and field; the other units still land. Reasons quote codes,
quantities and timestamps, never a value read from PID, NK1, GT1 or IN1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters.base import Emitted, Failure, SourceLocation
from adapters.his.hl7time import TimestampError, parse_ts
from adapters.his.mapping import FieldRef
from adapters.his.patient import patient_token
from schemas._base import LocationRef
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from uuid import UUID

    from adapters.base import TranslateContext
    from adapters.his.mapping import HisMapping
    from adapters.his.tokenize import Message, Segment
    from hub.ports import RawRecord
    from schemas.envelope import EventBase, Source


class UnitProblem(Exception):
    """One unit cannot be translated: which segment and field, a stable code and the reason."""

    def __init__(self, segment: Segment, field: str, code: str, reason: str) -> None:
        super().__init__(reason)
        self.segment = segment
        self.field = field
        self.code = code
        self.reason = reason


@dataclass
class MessageContext:
    """One message being translated, and what its handler has produced so far."""

    message: Message
    raw: RawRecord
    mapping: HisMapping
    ctx: TranslateContext
    source: Source
    type_label: str
    prefix: str = ""
    filename: str | None = None
    events: list[Emitted] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[Failure] = field(default_factory=list)  # units kept with a field unknown
    units: int = 0
    _pending: list[UnitProblem] = field(default_factory=list)  # notes of the unit being built
    # Segments of units skipped on purpose: what of them was not read counts as ignored.
    passed: list[Segment] = field(default_factory=list)
    _msh_read: bool = False
    _msh_time: datetime | None = None
    _msh_problem: UnitProblem | None = None
    _patient_read: bool = False
    _patient_token: str | None = None

    # -- positions and outcomes
    def position(self, segment: Segment, occurrence: int, suffix: str = "") -> str:
        """`FT1:2`: the second FT1 (HL7's segment sequence), prefixed `m<k>/` inside a batch."""
        return f"{self.prefix}{segment.id}:{occurrence}{suffix}"

    def emit(self, position: str, segment: Segment, build: Callable[[], EventBase]) -> None:
        """Build an event (pydantic validates it) and record it; an invalid one becomes a Failure."""
        try:
            event = build()
        except ValidationError as exc:
            # Never the input values in the reason: only where and what kind of problem.
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            self.fail(
                position, UnitProblem(segment, segment.id, "invalid_event", f"not a valid event: {details}")
            )
            return
        self.events.append(Emitted(event=event, position=position, location=self.location(segment)))
        for problem in self._pending:
            self.notes.append(self._failure(f"{position}#{problem.field}", problem))
        self._pending.clear()

    def fail(self, position: str, problem: UnitProblem) -> None:
        self._pending.clear()  # the unit failed as a whole: its notes would only repeat that
        self.failures.append(self._failure(position, problem))

    def _failure(self, position: str, problem: UnitProblem) -> Failure:
        return Failure(
            position=position,
            reason=f"{position}: {problem.reason}",
            code=problem.code,
            location=self.location(problem.segment, problem.field),
            excerpt=None,  # HL7 segments can carry patient data: nothing from the message is copied
        )

    def skip(self, reason: str, *segments: Segment) -> None:
        """A unit deliberately not translated; `segments` (its own) are then not unclaimed."""
        self.skipped.append(reason)
        self.passed += segments

    def location(self, segment: Segment, field_name: str | None = None) -> SourceLocation:
        return SourceLocation(file=self.filename, line=segment.number, segment=segment.id, field=field_name)

    def event_id(self, position: str) -> UUID:
        return event_id_for("his", self.raw.message_id, position)

    # -- values
    def timestamp(self, segment: Segment, n: int, component: int | None = None) -> datetime | None:
        """The TS at segment-n[.component] as UTC; None when empty; UnitProblem when unreadable."""
        text = segment.field(n, component).strip()
        if not text:
            return None
        try:
            return parse_ts(text, self.ctx.tz)
        except TimestampError as exc:
            raise UnitProblem(
                segment, f"{segment.id}-{n}", "invalid_timestamp", f"{segment.id}-{n}: {exc}"
            ) from exc

    def message_time(self) -> datetime:
        """MSH-7, or the receive time when MSH-7 is empty."""
        if not self._msh_read:
            self._msh_read = True
            try:
                self._msh_time = self.timestamp(self.message.segment_list[0], 7, 1)
            except UnitProblem as problem:
                self._msh_problem = problem
        if self._msh_problem is not None:
            raise self._msh_problem
        return self._msh_time or self.raw.received_at

    def first_time(self, *candidates: tuple[Segment | None, int, int | None]) -> datetime:
        """The first non-empty timestamp among (segment, field, component), else the message time."""
        for segment, n, component in candidates:
            if segment is not None:
                value = self.timestamp(segment, n, component)
                if value is not None:
                    return value
        return self.message_time()

    def quantity(
        self, segment: Segment, n: int, component: int | None = None, *, positive: bool = True
    ) -> Decimal | None:
        """A numeric field as Decimal; None when empty; UnitProblem when not a finite number."""
        text = segment.field(n, component).strip()
        if not text:
            return None
        label = f"{segment.id}-{n}"
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise UnitProblem(segment, label, "invalid_number", f"{label}: {text!r} is not a number") from exc
        if not value.is_finite():
            raise UnitProblem(segment, label, "invalid_number", f"{label}: {text!r} is not a finite number")
        if positive and value <= 0:
            raise UnitProblem(segment, label, "invalid_number", f"{label}: {text} must be greater than 0")
        return value

    def place(
        self, segment: Segment, label: str, code: str, text: str = "", *, keep_unknown: bool = True
    ) -> LocationRef:
        """The mapped place for a location/department code.

        Unknown: a UnitProblem when the mapping makes departments strict (or `keep_unknown` is
        false), else an unknown place, noted for the unit the handler emits next (a dead-letter
        note naming `label`, so the integrator can add the code and retry).
        """
        ref = self.mapping.place(code, text)
        if ref is not None:
            return ref
        shown = code or text
        if keep_unknown and not self.mapping.is_strict("department"):
            self._pending.append(
                UnitProblem(
                    segment,
                    label,
                    "department_unknown",
                    f"{label}: department code {shown!r} is not in the mapping; the unit is kept with the "
                    "department unknown (add the code under departments or locations, then retry)",
                )
            )
            return LocationRef()
        raise UnitProblem(
            segment,
            label,
            "unknown_code",
            f"{label}: location/department code {shown!r} is not in the mapping (strict: department)",
        )

    def resolve(self, ref_text: str, unit: Segment, group: list[Segment]) -> tuple[str, Segment | None]:
        """A mapping field reference: in the unit's own segment, then its group, then the message."""
        ref = FieldRef.parse(ref_text)
        if unit.id == ref.segment:
            segment: Segment | None = unit
        else:
            segment = next((s for s in group if s.id == ref.segment), None) or self.message.segment(
                ref.segment
            )
        if segment is None:
            return "", None
        return segment.field(ref.field, ref.component, 0, ref.subcomponent).strip(), segment

    def patient(self) -> str | None:
        """The patient token from PID-3 (see PatientRules), or None without a PID identifier."""
        if not self._patient_read:
            self._patient_token = self._read_patient()
            self._patient_read = True
        return self._patient_token

    def _read_patient(self) -> str | None:
        pid = self.message.segment("PID")
        if pid is None:
            return None
        secret = self.mapping.require_secret()
        wanted = [t.upper() for t in self.mapping.patient.identifier_types]
        candidates: list[tuple[int, str, str]] = []
        for rep in range(pid.repetitions(3)):
            identifier = pid.field(3, 1, rep).strip()
            if not identifier:
                continue
            kind = pid.field(3, 5, rep).strip().upper()
            rank = wanted.index(kind) if kind in wanted else len(wanted)
            candidates.append((rank, pid.field(3, 4, rep), identifier))
        if not candidates:
            return None
        _, authority, identifier = min(candidates, key=lambda c: c[0])
        return patient_token(secret, authority, identifier)


def group_after(message: Message, anchor: Segment, stop: str) -> list[Segment]:
    """Segments after `anchor` up to (not including) the next segment with id `stop`."""
    segments = message.segment_list
    start = segments.index(anchor) + 1
    group: list[Segment] = []
    for segment in segments[start:]:
        if segment.id == stop:
            break
        group.append(segment)
    return group
