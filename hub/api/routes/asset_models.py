"""Response and request models of the asset registry and availability routes, and their clock.

"Now" (loan overdue, calibration validity, ready devices) is the hub's clock (build_hub's
`clock=`), read in the site's time zone for calendar dates.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.api.deps import ClockDep, get_clock
from hub.api.models import AssetOut
from projections.assets.queries import loan_overdue
from projections.assets.registry import RegistryConfig

SITE_ZONE = RegistryConfig().zone


__all__ = ["ClockDep", "get_clock"]  # the hub's clock (hub.api.deps), by its older names


def site_today(now: datetime) -> date:
    return now.astimezone(SITE_ZONE).date()


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class LinkedIdentifierOut(_Out):
    """One name a source system gives the device, and how the link was made."""

    scheme: str
    value: str
    linked_by: str = Field(description="registered, mapping, udi_match, serial_match or person")


class AssetItemOut(AssetOut):
    """A golden record as listed: its fields plus provisional flag, loan and calibration at a glance."""

    # Narrows the base's list (adds linked_by); pydantic re-declares the field.
    identifiers: list[LinkedIdentifierOut]  # type: ignore[assignment]
    provisional: bool = Field(description="No system registered the device yet (known from other events)")
    on_loan: bool
    loan_due_at: datetime | None
    loan_overdue: bool = Field(description="On loan past its due time, as of the request")
    calibration_valid_until: date | None


class LoanOut(_Out):
    """The device's latest loan (open or returned)."""

    loan_id: str | None
    on_loan: bool
    borrower_department_code: str | None
    borrower_department_name: str | None
    lender_department_code: str | None
    lender_department_name: str | None
    responsible_person: str | None
    due_at: datetime | None
    started_at: datetime | None
    returned_at: datetime | None
    overdue: bool = Field(description="On loan past due_at, as of the request")


class CalibrationOut(_Out):
    """The latest calibration (metrology) of the device."""

    calibrated_on: date
    valid_until: date | None
    result: str
    certificate_no: str | None
    provider: str | None
    valid: bool = Field(description="Result not failed and valid_until not before today")


class InspectionOut(_Out):
    kind: str
    inspected_on: date
    result: str
    next_due_on: date | None


class ContractOut(_Out):
    contract_no: str
    kind: str
    vendor: str | None
    starts_on: date | None
    ends_on: date | None
    amount: Decimal | None
    currency: str | None


class TelemetrySummaryOut(_Out):
    """What the device last reported about itself, and its open early warnings (device_health)."""

    last_at: datetime
    device_type: str | None
    usage_hours: float | None
    power_on_cycles: int | None
    battery_pct: float | None
    battery_cycles: int | None
    early_warnings: list[str] = Field(description="Open warnings: `<rule>: <reason>`")


class AssetDetailOut(AssetItemOut):
    """One golden record with everything the registry knows about it."""

    requested_id: str = Field(
        description="The id asked for: a merged record's id resolves to its golden record"
    )
    merged_from: list[str] = Field(description="Record ids merged into this golden record")
    decommissioned_on: date | None
    accepted_on: date | None
    acceptance_result: str | None
    commissioned_on: date | None
    valuation_period: str | None
    last_used_at: datetime | None
    loan: LoanOut | None
    calibration: CalibrationOut | None
    inspection: InspectionOut | None
    contracts: list[ContractOut]
    telemetry: TelemetrySummaryOut | None = Field(
        default=None, description="Latest device telemetry and open early warnings (live view only)"
    )


class AssetItemPage(_Out):
    items: list[AssetItemOut]
    total: int
    limit: int
    offset: int


class HistoryItemOut(_Out):
    """One event about the device, as the source system reported it."""

    event_id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    source_system: str
    source_message_id: str
    raw_ref: str | None = Field(description="Where the raw message is kept (GET /raw/{ref})")
    record_id: str = Field(description="The record id the event named (a merged record's id stays here)")
    summary: str


class HistoryPage(_Out):
    asset_id: str
    items: list[HistoryItemOut]
    total: int
    limit: int
    offset: int


class ConflictOut(_Out):
    """A link the registry refused: the identifier stays with the holder until a person decides."""

    conflict_id: str
    scheme: str
    value: str
    holder_asset_id: str
    claimant_asset_id: str
    status: Literal["open", "resolved"]
    event_id: str = Field(description="The event whose link was refused")
    source_system: str
    occurred_at: datetime
    recorded_at: datetime
    resolved_asset_id: str | None
    resolved_by_event_id: str | None


class ConflictPage(_Out):
    items: list[ConflictOut]
    total: int
    limit: int
    offset: int


class LinkIn(BaseModel):
    """A person's statement: this identifier names this device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scheme: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=40)]
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    actor: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class LinkAccepted(_Out):
    event_id: str
    asset_id: str
    status: Literal["accepted"] = "accepted"


def item(row: dict[str, Any], now: datetime) -> AssetItemOut:
    return AssetItemOut.model_validate({**row, "loan_overdue": loan_overdue(row, now)})


def detail(row: dict[str, Any], now: datetime) -> AssetDetailOut:
    """The detail view of a row from projections.assets.queries.get_asset, judged at `now`."""
    overdue = loan_overdue(row, now)
    loan = None
    if row["loan_id"] is not None:
        loan = LoanOut(
            loan_id=row["loan_id"],
            on_loan=row["on_loan"],
            borrower_department_code=row["loan_borrower_code"],
            borrower_department_name=row["loan_borrower_name"],
            lender_department_code=row["loan_lender_code"],
            lender_department_name=row["loan_lender_name"],
            responsible_person=row["loan_responsible"],
            due_at=row["loan_due_at"],
            started_at=row["loan_started_at"],
            returned_at=row["loan_returned_at"],
            overdue=overdue,
        )
    calibration = None
    if row["calibrated_on"] is not None:
        until = row["calibration_valid_until"]
        calibration = CalibrationOut(
            calibrated_on=row["calibrated_on"],
            valid_until=until,
            result=row["calibration_result"],
            certificate_no=row["calibration_certificate"],
            provider=row["calibration_provider"],
            valid=row["calibration_result"] != "failed" and (until is None or until >= site_today(now)),
        )
    inspection = None
    if row["inspected_on"] is not None:
        inspection = InspectionOut(
            kind=row["inspection_kind"],
            inspected_on=row["inspected_on"],
            result=row["inspection_result"],
            next_due_on=row["inspection_next_due_on"],
        )
    return AssetDetailOut.model_validate(
        {
            **row,
            "loan_overdue": overdue,
            "loan": loan,
            "calibration": calibration,
            "inspection": inspection,
            "telemetry": row.get("telemetry"),
        }
    )
