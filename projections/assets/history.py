"""One history row per asset event: what happened, when, which system said so, and where it came from.

A usage correction (`asset.usage_corrected`, a retry that found the department a first
translation left unknown) has its own row, and the corrected usage's row is summarised again
from the corrected payload (`corrected_summary`), as if it had read right from the start.

The summary is a short line for people (e.g. `status → under_repair (维修中)`). It never carries
patient data: an `asset.used` summary names the department and order, never the patient token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas.assets import (
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetDetailsCorrected,
    AssetIdentifierLinked,
    AssetInspected,
    AssetLoanCorrected,
    AssetLoaned,
    AssetRegistered,
    AssetRelocated,
    AssetReturned,
    AssetStatusChanged,
    AssetUsageCorrected,
    AssetUsed,
    AssetValuationUpdated,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemas._base import DeptRef, LocationRef
    from schemas.envelope import EventBase

MAX_SUMMARY = 300


def history_row(event: EventBase, asset_id: str, event_id: str | None = None) -> dict[str, Any]:
    """The history row of `event`, filed under golden record `asset_id` (`event_id`: its id as
    text, if the caller has it already)."""
    return {
        "asset_id": asset_id,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "event_id": event_id or str(event.event_id),
        "record_id": event.subject,
        "type": event.type,
        "source_system": event.source.system.value,
        "source_message_id": event.source.message_id,
        "raw_ref": event.source.raw_ref,
        "summary": summary(event),
    }


def summary(event: EventBase) -> str:
    describe = _SUMMARIES.get(type(event))
    text = describe(event) if describe is not None else event.type
    return text[:MAX_SUMMARY]


def _dept(ref: DeptRef | None) -> str:
    if ref is None:
        return "?"
    return ref.name or ref.code or "?"


def _place(ref: LocationRef) -> str:
    dept = _dept(ref.department) if (ref.department.code or ref.department.name) else ""
    return " / ".join(p for p in (dept, ref.location or "") if p) or "?"


def _registered(e: AssetRegistered) -> str:
    d = e.payload.details
    what = " ".join(p for p in (d.name, d.model) if p) or "device"
    names = ", ".join(f"{i.scheme} {i.value}" for i in e.payload.identifiers)
    return f"registered: {what} ({names})"


def _corrected(e: AssetDetailsCorrected) -> str:
    return "corrected: " + ", ".join(e.payload.changed_fields)


def _linked(e: AssetIdentifierLinked) -> str:
    p = e.payload
    by = f"{p.linked_by} {p.actor}" if p.actor else p.linked_by
    return f"identifier linked: {p.identifier.scheme} {p.identifier.value} (by {by})"


def _accepted(e: AssetAccepted) -> str:
    return f"accepted {e.payload.accepted_on.isoformat()}: {e.payload.result}"


def _commissioned(e: AssetCommissioned) -> str:
    where = f" in {_dept(e.payload.department)}" if e.payload.department else ""
    return f"commissioned {e.payload.commissioned_on.isoformat()}{where}"


def _relocated(e: AssetRelocated) -> str:
    origin = f"{_place(e.payload.from_)} → " if e.payload.from_ is not None else ""
    return f"relocated: {origin}{_place(e.payload.to)}"


def _status(e: AssetStatusChanged) -> str:
    text = f" ({e.payload.status_text})" if e.payload.status_text else ""
    return f"status → {e.payload.status.value}{text}"


def _loaned(e: AssetLoaned) -> str:
    p = e.payload
    due = f" until {p.due_at.date().isoformat()}" if p.due_at else ""
    return f"loaned to {_dept(p.borrower_department)}{due} (loan {p.loan_id})"


def _loan_corrected(e: AssetLoanCorrected) -> str:
    now, was = e.payload.loan, e.payload.previous
    was_text = _dept(was.borrower_department)
    return f"loan {now.loan_id} corrected: to {_dept(now.borrower_department)} (was {was_text})"


def _returned(e: AssetReturned) -> str:
    condition = f", {e.payload.condition}" if e.payload.condition else ""
    return f"returned (loan {e.payload.loan_id}{condition})"


def _calibrated(e: AssetCalibrated) -> str:
    p = e.payload
    until = f", valid until {p.valid_until.isoformat()}" if p.valid_until else ""
    return f"calibrated {p.calibrated_on.isoformat()}: {p.result}{until}"


def _inspected(e: AssetInspected) -> str:
    p = e.payload
    return f"inspected ({p.kind}) {p.inspected_on.isoformat()}: {p.result}"


def _contract(e: AssetContractRegistered) -> str:
    p = e.payload
    ends = f" until {p.ends_on.isoformat()}" if p.ends_on else ""
    vendor = f" with {p.vendor}" if p.vendor else ""
    return f"{p.kind} contract {p.contract_no}{vendor}{ends}"


def _used(e: AssetUsed) -> str:
    p = e.payload
    where = f" in {_dept(p.department)}" if p.department else ""
    order = f" (order {p.order_id})" if p.order_id else ""
    return f"used{where}{order}"


def corrected_summary(e: AssetUsageCorrected) -> tuple[str, str]:
    """(event id of the usage corrected, that usage's summary as corrected)."""
    usage = AssetUsed.model_validate(
        {**e.model_dump(exclude={"type", "payload"}), "payload": e.payload.usage}
    )
    return str(e.payload.corrects), summary(usage)


def _usage_corrected(e: AssetUsageCorrected) -> str:
    p = e.payload
    was = _dept(p.previous.department) if p.previous.department else "department unknown"
    now = _dept(p.usage.department) if p.usage.department else "department unknown"
    return f"usage corrected: {now} (was {was})"


def _valuation(e: AssetValuationUpdated) -> str:
    p = e.payload
    return f"valuation {p.period}: net {p.net_value.amount} {p.net_value.currency}"


def _decommissioned(e: AssetDecommissioned) -> str:
    reason = f": {e.payload.reason}" if e.payload.reason else ""
    return f"decommissioned {e.payload.decommissioned_on.isoformat()}{reason}"


_SUMMARIES: dict[type[EventBase], Callable[[Any], str]] = {
    AssetRegistered: _registered,
    AssetDetailsCorrected: _corrected,
    AssetIdentifierLinked: _linked,
    AssetAccepted: _accepted,
    AssetCommissioned: _commissioned,
    AssetRelocated: _relocated,
    AssetStatusChanged: _status,
    AssetLoaned: _loaned,
    AssetLoanCorrected: _loan_corrected,
    AssetReturned: _returned,
    AssetCalibrated: _calibrated,
    AssetInspected: _inspected,
    AssetContractRegistered: _contract,
    AssetUsed: _used,
    AssetUsageCorrected: _usage_corrected,
    AssetValuationUpdated: _valuation,
    AssetDecommissioned: _decommissioned,
}
