"""What each asset event does to a golden record's row, and how two records' rows combine on a merge.

Rows are plain dicts with the columns of `asset_registry_assets`. Rules, and why:
- Descriptive fields from `asset.registered` fill only what is still empty: a second system
  registering the device adds what it knows without overriding the first.
- `asset.details_corrected` applies only its `changed_fields`, in recorded order: it is a
  correction (a re-export), not a business fact, so it does not move any state clock.
- State groups take the fact with the latest `occurred_at` (equal times: the later arrival):
  status, location (relocations, and commissioning into a department), loan (loaned/returned,
  whichever happened last), calibration, inspection, acceptance. Each group keeps its own clock,
  so a late relocation is applied where it belongs even when a newer status change is known.
- Facts that only accumulate are order-free: decommissioned (a terminal flag; its date is the
  earliest reported), last use (the latest), valuation (the latest period), contracts (by number,
  latest fact per number).
- A merge combines rows group by group with the same rules: the newer clock wins; equal clocks
  and descriptive fields prefer the row of the better candidate (see projections.assets.identity).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from projections.assets.tables import assets
from schemas.assets import (
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetDetails,
    AssetDetailsCorrected,
    AssetInspected,
    AssetLoanCorrected,
    AssetLoaned,
    AssetRegistered,
    AssetRelocated,
    AssetReturned,
    AssetStatus,
    AssetStatusChanged,
    AssetUsageCorrected,
    AssetUsed,
    AssetValuationUpdated,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from schemas._base import DeptRef
    from schemas.assets import LoanedPayload
    from schemas.envelope import EventBase

COLUMNS = tuple(c.name for c in assets.columns)
_PLAIN_FIELDS = (
    "name", "model", "manufacturer", "serial_number", "udi", "location", "status_text",
    "acquired_on", "funding_source", "useful_life_years",
)  # fmt: skip
_MONEY_FIELDS = ("original_value", "accumulated_depreciation", "net_value")
_ALL_DETAIL_FIELDS = tuple(AssetDetails.model_fields)

# Clock column -> the columns that group carries (a merge takes them together).
GROUPS: dict[str, tuple[str, ...]] = {
    "status_at": ("status", "status_text"),
    "location_at": ("department_code", "department_name", "location"),
    "loan_at": ("loan_id", "on_loan", "loan_returned_at"),
    "calibration_at": (
        "calibrated_on", "calibration_valid_until", "calibration_result", "calibration_certificate",
        "calibration_provider",
    ),
    "inspection_at": ("inspection_kind", "inspected_on", "inspection_result", "inspection_next_due_on"),
}  # fmt: skip
# Who has the device on the current loan: from the latest `asset.loaned` of that loan id.
LOAN_DETAILS = (
    "loan_borrower_code", "loan_borrower_name", "loan_lender_code", "loan_lender_name",
    "loan_responsible", "loan_due_at", "loan_started_at",
)  # fmt: skip
_GROUPED = {c for cols in GROUPS.values() for c in cols} | set(GROUPS) | set(LOAN_DETAILS)
_SPECIAL = {
    "asset_id", "decommissioned", "decommissioned_on", "provisional", "first_recorded_at",
    "source_system", "last_occurred_at", "last_used_at", "updated_event_id", "contracts",
    "valuation_period", "accepted_on", "acceptance_result", "commissioned_on",
}  # fmt: skip
# Filled from the preferred row first, then the others (descriptive fields, money).
_FILL = tuple(c for c in COLUMNS if c not in _GROUPED and c not in _SPECIAL)


def new_row(asset_id: str, event: EventBase) -> dict[str, Any]:
    """An empty golden record created by `event` (provisional until a registration)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        asset_id=asset_id,
        source_system=event.source.system.value,
        first_recorded_at=event.recorded_at,
        decommissioned=False,
        provisional=True,
        on_loan=False,
    )
    return row


def detail_columns(details: AssetDetails, fields: Sequence[str]) -> dict[str, Any]:
    """Column values for the named AssetDetails fields (None where the field is unset)."""
    out: dict[str, Any] = {}
    for field_name in fields:
        value = getattr(details, field_name, None)
        if field_name in _PLAIN_FIELDS:
            out[field_name] = value
        elif field_name in _MONEY_FIELDS:
            out[field_name] = value.amount if value is not None else None
            if value is not None:
                out["currency"] = value.currency
        elif field_name == "status":
            out["status"] = value.value if value is not None else None
        elif field_name in {"category", "department"}:
            out[f"{field_name}_code"] = value.code if value is not None else None
            out[f"{field_name}_name"] = value.name if value is not None else None
        # Any other name is not a field of AssetDetails: a correction cannot touch it.
    return out


def apply(row: dict[str, Any], event: EventBase, event_id: str | None = None) -> None:
    """Fold one event into its golden record's row (`event_id`: its id as text, if known)."""
    handler = HANDLERS.get(type(event))
    if handler is not None:
        handler(row, event)
    row["updated_event_id"] = event_id or str(event.event_id)
    # The hub first learned of the device at the earliest receive time of any of its events.
    if event.recorded_at < row["first_recorded_at"]:
        row["first_recorded_at"], row["source_system"] = event.recorded_at, event.source.system.value
    if not isinstance(event, AssetDetailsCorrected):
        row["last_occurred_at"] = _later(row["last_occurred_at"], event.occurred_at)


def _later(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b > a) else a


def _current(row: dict[str, Any], clock: str, event: EventBase) -> bool:
    """True when `event` is not older than the fact that set the group `clock` belongs to."""
    last = row[clock]
    if last is None or event.occurred_at >= last:
        row[clock] = event.occurred_at
        return True
    return False


def _dept(ref: DeptRef | None) -> tuple[str | None, str | None]:
    return (ref.code, ref.name) if ref is not None else (None, None)


def _registered(row: dict[str, Any], event: AssetRegistered) -> None:
    for column, value in detail_columns(event.payload.details, _ALL_DETAIL_FIELDS).items():
        if row[column] is None and value is not None:
            row[column] = value
    row["provisional"] = False


def _details_corrected(row: dict[str, Any], event: AssetDetailsCorrected) -> None:
    row.update(detail_columns(event.payload.details, event.payload.changed_fields))


def _move_to(row: dict[str, Any], event: EventBase, department: DeptRef | None, location: str | None) -> None:
    if not _current(row, "location_at", event):
        return
    code, name = _dept(department)
    if code is not None or name is not None:
        row["department_code"], row["department_name"], row["location"] = code, name, location
    elif location is not None:
        row["location"] = location


def _relocated(row: dict[str, Any], event: AssetRelocated) -> None:
    _move_to(row, event, event.payload.to.department, event.payload.to.location)


def _commissioned(row: dict[str, Any], event: AssetCommissioned) -> None:
    row["commissioned_on"] = _later(row["commissioned_on"], event.payload.commissioned_on)
    if event.payload.department is not None:
        _move_to(row, event, event.payload.department, None)


def _accepted(row: dict[str, Any], event: AssetAccepted) -> None:
    accepted = row["accepted_on"]
    if accepted is None or event.payload.accepted_on >= accepted:
        row["accepted_on"], row["acceptance_result"] = event.payload.accepted_on, event.payload.result


def _status_changed(row: dict[str, Any], event: AssetStatusChanged) -> None:
    if _current(row, "status_at", event):
        row["status"], row["status_text"] = event.payload.status.value, event.payload.status_text


def _decommissioned(row: dict[str, Any], event: AssetDecommissioned) -> None:
    row["decommissioned"] = True
    on = row["decommissioned_on"]
    row["decommissioned_on"] = (
        min(on, event.payload.decommissioned_on) if on else event.payload.decommissioned_on
    )
    if _current(row, "status_at", event):
        row["status"], row["status_text"] = AssetStatus.SCRAPPED.value, None


def _loaned(row: dict[str, Any], event: AssetLoaned) -> None:
    p = event.payload
    if _current(row, "loan_at", event):
        if row["loan_id"] != p.loan_id:
            row.update(dict.fromkeys(LOAN_DETAILS))
        row.update(loan_id=p.loan_id, on_loan=True, loan_returned_at=None)
    # Details come from the latest loaned event of the current loan, whenever it arrives (a
    # return may be known first: then the loan stays closed and learns who had the device).
    _loan_details(row, p, event.occurred_at)


def _loan_details(row: dict[str, Any], p: LoanedPayload, occurred_at: datetime) -> None:
    started = row["loan_started_at"]
    if row["loan_id"] == p.loan_id and (started is None or occurred_at >= started):
        lender_code, lender_name = _dept(p.lender_department)
        row.update(
            loan_borrower_code=p.borrower_department.code,
            loan_borrower_name=p.borrower_department.name,
            loan_lender_code=lender_code,
            loan_lender_name=lender_name,
            loan_responsible=p.responsible_person,
            loan_due_at=p.due_at,
            loan_started_at=occurred_at,
        )


def _loan_corrected(row: dict[str, Any], event: AssetLoanCorrected) -> None:
    """The loan's details as corrected, when it is still the current loan and no later loaned
    event of it set them (the correction keeps the original's business time)."""
    _loan_details(row, event.payload.loan, event.occurred_at)


def _returned(row: dict[str, Any], event: AssetReturned) -> None:
    if not _current(row, "loan_at", event):
        return
    if row["loan_id"] != event.payload.loan_id:
        row.update(dict.fromkeys(LOAN_DETAILS))
    row.update(loan_id=event.payload.loan_id, on_loan=False, loan_returned_at=event.payload.returned_at)


def _calibrated(row: dict[str, Any], event: AssetCalibrated) -> None:
    if _current(row, "calibration_at", event):
        p = event.payload
        row.update(
            calibrated_on=p.calibrated_on,
            calibration_valid_until=p.valid_until,
            calibration_result=p.result,
            calibration_certificate=p.certificate_no,
            calibration_provider=p.provider,
        )


def _inspected(row: dict[str, Any], event: AssetInspected) -> None:
    if _current(row, "inspection_at", event):
        p = event.payload
        row.update(
            inspection_kind=p.kind,
            inspected_on=p.inspected_on,
            inspection_result=p.result,
            inspection_next_due_on=p.next_due_on,
        )


def _contract_registered(row: dict[str, Any], event: AssetContractRegistered) -> None:
    p = event.payload
    entry = {
        "contract_no": p.contract_no,
        "kind": p.kind,
        "vendor": p.vendor,
        "starts_on": p.starts_on.isoformat() if p.starts_on else None,
        "ends_on": p.ends_on.isoformat() if p.ends_on else None,
        "amount": str(p.amount.amount) if p.amount else None,
        "currency": p.amount.currency if p.amount else None,
        "at": event.occurred_at.isoformat(),
    }
    row["contracts"] = _merge_contracts(row["contracts"], dump_contracts([entry]))


def dump_contracts(entries: list[dict[str, Any]]) -> str:
    return json.dumps(sorted(entries, key=lambda e: e["contract_no"]), ensure_ascii=False, sort_keys=True)


def load_contracts(text: str | None) -> list[dict[str, Any]]:
    return list(json.loads(text)) if text else []


def _merge_contracts(mine: str | None, theirs: str | None) -> str | None:
    """Contracts of both, by number; for a number in both, the later fact (ties: `theirs`)."""
    if not theirs:
        return mine
    by_no = {e["contract_no"]: e for e in load_contracts(mine)}
    for entry in load_contracts(theirs):
        known = by_no.get(entry["contract_no"])
        if known is None or datetime.fromisoformat(entry["at"]) >= datetime.fromisoformat(known["at"]):
            by_no[entry["contract_no"]] = entry
    return dump_contracts(list(by_no.values()))


def _used(row: dict[str, Any], event: AssetUsed) -> None:
    p = event.payload
    row["last_used_at"] = _later(row["last_used_at"], p.ended_at or p.started_at or event.occurred_at)


def _usage_corrected(row: dict[str, Any], event: AssetUsageCorrected) -> None:
    p = event.payload.usage
    row["last_used_at"] = _later(row["last_used_at"], p.ended_at or p.started_at or event.occurred_at)


def _valuation_updated(row: dict[str, Any], event: AssetValuationUpdated) -> None:
    p = event.payload
    period = row["valuation_period"]
    if period is not None and p.period < period:
        return
    row["valuation_period"] = p.period
    row["accumulated_depreciation"] = p.accumulated_depreciation.amount
    row["net_value"] = p.net_value.amount
    row["currency"] = p.net_value.currency
    if p.original_value is not None:
        row["original_value"] = p.original_value.amount


HANDLERS: dict[type[EventBase], Callable[[dict[str, Any], Any], None]] = {
    AssetRegistered: _registered,
    AssetDetailsCorrected: _details_corrected,
    AssetAccepted: _accepted,
    AssetCommissioned: _commissioned,
    AssetRelocated: _relocated,
    AssetStatusChanged: _status_changed,
    AssetLoaned: _loaned,
    AssetLoanCorrected: _loan_corrected,
    AssetReturned: _returned,
    AssetCalibrated: _calibrated,
    AssetInspected: _inspected,
    AssetContractRegistered: _contract_registered,
    AssetUsed: _used,
    AssetUsageCorrected: _usage_corrected,
    AssetValuationUpdated: _valuation_updated,
    AssetDecommissioned: _decommissioned,
}


def combine(rows: Sequence[dict[str, Any]], asset_id: str, event: EventBase) -> dict[str, Any]:
    """One golden record from the rows of merged records, best candidate's row first."""
    out = dict(rows[0])
    for other in rows[1:]:
        _combine_into(out, other)
    out["asset_id"] = asset_id
    out["updated_event_id"] = str(event.event_id)
    return out


def _combine_into(out: dict[str, Any], other: dict[str, Any]) -> None:
    for column in _FILL:
        if out[column] is None:
            out[column] = other[column]
    _combine_groups(out, other)
    out["decommissioned"] = bool(out["decommissioned"] or other["decommissioned"])
    dates = [d for d in (out["decommissioned_on"], other["decommissioned_on"]) if d is not None]
    out["decommissioned_on"] = min(dates) if dates else None
    out["provisional"] = bool(out["provisional"] and other["provisional"])
    if other["first_recorded_at"] is not None and (
        out["first_recorded_at"] is None or other["first_recorded_at"] < out["first_recorded_at"]
    ):
        out["first_recorded_at"], out["source_system"] = other["first_recorded_at"], other["source_system"]
    for column in ("last_occurred_at", "last_used_at", "commissioned_on"):
        out[column] = _later(out[column], other[column])
    _combine_accepted(out, other)
    _combine_valuation(out, other)
    out["contracts"] = _merge_contracts(other["contracts"], out["contracts"])


def _combine_groups(out: dict[str, Any], other: dict[str, Any]) -> None:
    ours_loan = {c: out[c] for c in ("loan_id", *LOAN_DETAILS)}
    for clock, columns in GROUPS.items():
        if other[clock] is not None and (out[clock] is None or other[clock] > out[clock]):
            out.update({c: other[c] for c in (clock, *columns)})
        elif out[clock] is None and other[clock] is None:
            # Neither has a dated fact (e.g. both only registered): fill what is empty.
            for c in columns:
                if out[c] is None:
                    out[c] = other[c]
    # Loan details: the latest loaned event of the winning loan id, from either row.
    candidates = [r for r in (ours_loan, other) if r["loan_id"] == out["loan_id"] and r["loan_started_at"]]
    if candidates:
        best = max(candidates, key=lambda r: r["loan_started_at"])  # ties: ours (first)
        out.update({c: best[c] for c in LOAN_DETAILS})
    elif out["loan_id"] != ours_loan["loan_id"]:
        out.update({c: other[c] for c in LOAN_DETAILS})


def _combine_accepted(out: dict[str, Any], other: dict[str, Any]) -> None:
    theirs: date | None = other["accepted_on"]
    if theirs is not None and (out["accepted_on"] is None or theirs > out["accepted_on"]):
        out["accepted_on"], out["acceptance_result"] = theirs, other["acceptance_result"]


def _combine_valuation(out: dict[str, Any], other: dict[str, Any]) -> None:
    theirs: str | None = other["valuation_period"]
    if theirs is not None and (out["valuation_period"] is None or theirs > out["valuation_period"]):
        for column in ("valuation_period", "accumulated_depreciation", "net_value", "currency"):
            out[column] = other[column]
        if other["original_value"] is not None:
            out["original_value"] = other["original_value"]
