"""FHIR Task about a Device (a repair or maintenance job) -> `workorder.*` events.

A Task is a snapshot of a job: each time it arrives it gives `workorder.requested` (the same
event id every time, so it lands once) and, per the mapping's `task.statuses`, the event its
status means (assigned, started, on_hold, completed, cancelled, rejected). That status event's
id is `<step>@<meta.versionId or lastModified>`: the same Task version re-sent lands once, a
later version in the same status (on hold again) lands again. The work order is
`workorder_id_for("fhir", Task.identifier[0].value or Task.id)`.

A Task whose focus is not a Device is not a work order: archived and skipped. Task.for (the
patient, if any) is never read; a requester is named only when its reference or type says it is
staff (Practitioner, PractitionerRole, Organization, Device): a bare display could be a patient's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.fhir.devices import UnknownSender, focus_identifier
from adapters.fhir.units import Result, Skip, Unit
from adapters.fhir.values import (
    concept_text,
    concept_words,
    identifier_values,
    reference_label,
    reference_target,
    text,
)
from schemas._base import DeptRef, Identifier
from schemas.ids import workorder_id_for
from schemas.work_orders import (
    AssignedPayload,
    CancelledPayload,
    CompletedPayload,
    OnHoldPayload,
    Priority,
    RejectedPayload,
    RequestedPayload,
    StartedPayload,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderCompleted,
    WorkOrderOnHold,
    WorkOrderRejected,
    WorkOrderRequested,
    WorkOrderStarted,
)

if TYPE_CHECKING:
    from schemas.envelope import EventBase

# Who may be named as the requester: people and organisations of the hospital, never a patient.
_STAFF = frozenset({"Practitioner", "PractitionerRole", "Organization", "Device"})


def _focus(unit: Unit) -> Identifier | Result:
    """The device the Task is about, or what to do with a Task that names none the hub can key."""
    task = unit.resource
    try:
        asset = focus_identifier(task.focus, task, unit.mapping, unit.sender(), unit.siblings)
    except UnknownSender as exc:
        unit.refuse(
            "required",
            "Task.focus",
            f"Task.focus {exc} is a server-local id and nothing says whose server it is: send the "
            "Device's identifier in focus.identifier, an absolute reference or a Bundle fullUrl, "
            "meta.source, or set `sender` in the FHIR mapping",
        )
        return unit.result([])
    if asset is None:
        return Skip("Task.focus is not a Device: not a work order")
    return asset


def translate_task(unit: Unit) -> Result:
    task = unit.resource
    mapping = unit.mapping
    status = str(task.status)
    step = mapping.task.statuses.get(status)  # type: ignore[call-overload]
    if step is None:
        return Skip(f"Task status {status} is not mapped to a work-order step (mapping task.statuses)")
    if step == "skip":
        return Skip(f"Task status {status}: not a work order yet")
    asset = _focus(unit)
    if not isinstance(asset, Identifier):
        return asset
    if not mapping.task_code_accepted(concept_words(task.code)):
        return Skip(f"Task.code {concept_text(task.code)!r} is not one of the mapping's task.codes")
    number = next((value for _, value, _ in identifier_values(task.identifier)), None) or text(task.id)
    if number is None:
        unit.refuse("required", "Task.identifier", "a work order needs a number: Task.identifier or Task.id")
    symptom = text(task.description) or concept_text(task.code)
    if symptom is None:
        unit.refuse("required", "Task.description", "a repair request needs a description of the fault")
    if number is None or symptom is None:
        return unit.result([])
    subject = workorder_id_for("fhir", number)
    events: list[EventBase] = [_requested(unit, subject, asset, symptom)]
    notes: list[str] = []
    if step != "requested":
        event = _step(unit, subject, step)
        if event is None:
            notes.append(f"Task status {status} without an owner: the assignment is not recorded")
        else:
            events.append(event)
    return unit.result(events, notes)


def _requested(unit: Unit, subject: str, asset: Identifier, symptom: str) -> EventBase:
    task = unit.resource
    return WorkOrderRequested(
        event_id=unit.event_id("requested"),
        occurred_at=unit.occurred(task.authoredOn, task.lastModified),
        recorded_at=unit.raw.received_at,
        source=unit.source,
        subject=subject,
        payload=RequestedPayload(
            asset=asset,
            reporting_department=_department(unit),
            symptom=symptom,
            priority=unit.mapping.priorities.get(task.priority, Priority.NORMAL)
            if task.priority
            else Priority.NORMAL,
            channel=unit.mapping.task.channel,
            requested_by=_requester(task.requester),
        ),
    )


def _step(unit: Unit, subject: str, step: str) -> EventBase | None:
    task = unit.resource
    period = task.executionPeriod
    start = period.start if period is not None else None
    end = period.end if period is not None else None
    meta = task.meta
    version = (text(meta.versionId) if meta is not None else None) or (
        task.lastModified.isoformat() if task.lastModified is not None else None
    )
    common: dict[str, Any] = {
        "event_id": unit.event_id(f"{step}@{version}" if version else step),
        "recorded_at": unit.raw.received_at,
        "source": unit.source,
        "subject": subject,
    }
    reason = concept_text(task.statusReason) or concept_text(task.businessStatus)
    engineer = reference_label(task.owner)
    if step == "assigned":
        if engineer is None:
            return None
        return WorkOrderAssigned(
            occurred_at=unit.occurred(task.lastModified, start, task.authoredOn),
            payload=AssignedPayload(engineer=engineer),
            **common,
        )
    if step == "started":
        return WorkOrderStarted(
            occurred_at=unit.occurred(start, task.lastModified, task.authoredOn),
            payload=StartedPayload(engineer=engineer),
            **common,
        )
    if step == "completed":
        return WorkOrderCompleted(
            occurred_at=unit.occurred(end, task.lastModified, task.authoredOn),
            payload=CompletedPayload(resolution=reason),
            **common,
        )
    occurred = unit.occurred(task.lastModified, task.authoredOn)
    kinds: dict[str, tuple[Any, Any]] = {
        "on_hold": (WorkOrderOnHold, OnHoldPayload(reason=reason)),
        "cancelled": (WorkOrderCancelled, CancelledPayload(reason=reason)),
        "rejected": (WorkOrderRejected, RejectedPayload(reason=reason)),
    }
    event_class, payload = kinds[step]
    event: EventBase = event_class(occurred_at=occurred, payload=payload, **common)
    return event


def _department(unit: Unit) -> DeptRef:
    task = unit.resource
    place = unit.place(getattr(task, "location", None), "Task.location")
    if place is not None and (place.ref.department.code or place.ref.department.name):
        return place.ref.department
    label = reference_label(task.requester) if _is_staff(task.requester) else None
    known = unit.mapping.department(label) if label else None
    return known.ref() if known is not None else DeptRef()


def _requester(reference: Any) -> str | None:
    return reference_label(reference) if _is_staff(reference) else None


def _is_staff(reference: Any) -> bool:
    if reference is None:
        return False
    target = reference_target(reference)
    declared = text(getattr(reference, "type", None))
    kind = target[0] if target else (declared.rsplit("/", 1)[-1] if declared else None)
    # A display-only requester says nothing of its type: it could be a patient's name, so it is not named.
    return kind in _STAFF
