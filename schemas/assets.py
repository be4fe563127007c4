"""Asset domain: one physical device across HRP, SPD, HIS, OA and FHIR. Subject = hub asset id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from schemas._base import DeptRef, HubModel, Identifier, LocationRef, Money, NonEmptyStr
from schemas.envelope import EventBase


class AssetStatus(StrEnum):
    """Harmonised device status; the source's own wording is kept in `status_text`."""

    IN_USE = "in_use"
    IDLE = "idle"
    UNDER_REPAIR = "under_repair"
    ON_LOAN = "on_loan"
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    SEALED = "sealed"
    SCRAPPED = "scrapped"
    UNKNOWN = "unknown"


class Category(HubModel):
    """Asset classification, e.g. a national 68-class code (`6854`) with its name."""

    code: str | None = None
    name: str | None = None


class AssetDetails(HubModel):
    """Descriptive fields of a device. All optional: sources know different subsets."""

    name: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    udi: str | None = None
    category: Category | None = None
    department: DeptRef | None = None
    location: str | None = None
    acquired_on: date | None = None
    original_value: Money | None = None
    accumulated_depreciation: Money | None = None
    net_value: Money | None = None
    status: AssetStatus | None = None
    status_text: str | None = None
    funding_source: str | None = None
    useful_life_years: Decimal | None = None


class AssetRegisteredPayload(HubModel):
    identifiers: list[Identifier] = Field(min_length=1)
    details: AssetDetails


class AssetDetailsCorrectedPayload(HubModel):
    """Only the fields that changed are set in `details`; `changed_fields` names them."""

    details: AssetDetails
    changed_fields: list[str] = Field(min_length=1)
    previous: AssetDetails | None = None


class IdentifierLinkedPayload(HubModel):
    identifier: Identifier
    linked_by: Literal["mapping", "udi_match", "serial_match", "person"]
    actor: str | None = None


class AcceptedPayload(HubModel):
    accepted_on: date
    result: Literal["passed", "failed", "conditional"] = "passed"
    accepted_by: str | None = None
    document_no: str | None = None


class CommissionedPayload(HubModel):
    commissioned_on: date
    department: DeptRef | None = None


class RelocatedPayload(HubModel):
    """v2: department and place travel together as a `LocationRef` (v1 had flat strings)."""

    to: LocationRef
    from_: LocationRef | None = Field(default=None, alias="from")
    reason: str | None = None
    document_no: str | None = None


class StatusChangedPayload(HubModel):
    status: AssetStatus
    previous: AssetStatus | None = None
    reason: str | None = None
    status_text: str | None = None


class LoanedPayload(HubModel):
    loan_id: NonEmptyStr
    borrower_department: DeptRef
    lender_department: DeptRef | None = None
    responsible_person: str | None = None
    due_at: AwareDatetime | None = None


class LoanCorrectedPayload(HubModel):
    """The loan `corrects` names, as it should have read: a retry after a mapping fix found a
    borrowing or lending department the first translation left unknown (an OA 借用科室 the mapping
    did not know). `previous` is what was published; read models take `loan` in its place."""

    corrects: UUID
    loan: LoanedPayload
    previous: LoanedPayload


class ReturnedPayload(HubModel):
    loan_id: NonEmptyStr
    returned_at: AwareDatetime
    condition: str | None = None


class CalibratedPayload(HubModel):
    certificate_no: str | None = None
    calibrated_on: date
    valid_until: date | None = None
    result: Literal["passed", "failed", "limited"] = "passed"
    provider: str | None = None


class InspectedPayload(HubModel):
    kind: Literal["preventive_maintenance", "electrical_safety", "performance", "other"]
    inspected_on: date
    result: Literal["passed", "failed"] = "passed"
    next_due_on: date | None = None


class ContractRegisteredPayload(HubModel):
    contract_no: NonEmptyStr
    kind: Literal["service", "warranty", "lease", "other"]
    vendor: str | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    amount: Money | None = None


class UsedPayload(HubModel):
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    department: DeptRef | None = None
    procedure_code: str | None = None
    order_id: str | None = None
    patient_token: str | None = None


class UsageCorrectedPayload(HubModel):
    """The usage `corrects` names, as it should have read: a retry after a mapping fix found
    what the first translation left unknown (e.g. a ward code). `previous` is what was published."""

    corrects: UUID
    usage: UsedPayload
    previous: UsedPayload


class ValuationUpdatedPayload(HubModel):
    period: NonEmptyStr
    original_value: Money | None = None
    accumulated_depreciation: Money
    net_value: Money
    method: str | None = None


class DecommissionedPayload(HubModel):
    decommissioned_on: date
    reason: str | None = None
    disposal_method: str | None = None
    document_no: str | None = None


class AssetRegistered(EventBase):
    type: Literal["asset.registered"] = "asset.registered"
    schema_version: Literal[1] = 1
    payload: AssetRegisteredPayload


class AssetDetailsCorrected(EventBase):
    type: Literal["asset.details_corrected"] = "asset.details_corrected"
    schema_version: Literal[1] = 1
    payload: AssetDetailsCorrectedPayload


class AssetIdentifierLinked(EventBase):
    type: Literal["asset.identifier_linked"] = "asset.identifier_linked"
    schema_version: Literal[1] = 1
    payload: IdentifierLinkedPayload


class AssetAccepted(EventBase):
    type: Literal["asset.accepted"] = "asset.accepted"
    schema_version: Literal[1] = 1
    payload: AcceptedPayload


class AssetCommissioned(EventBase):
    type: Literal["asset.commissioned"] = "asset.commissioned"
    schema_version: Literal[1] = 1
    payload: CommissionedPayload


class AssetRelocated(EventBase):
    type: Literal["asset.relocated"] = "asset.relocated"
    schema_version: Literal[2] = 2
    payload: RelocatedPayload


class AssetStatusChanged(EventBase):
    type: Literal["asset.status_changed"] = "asset.status_changed"
    schema_version: Literal[1] = 1
    payload: StatusChangedPayload


class AssetLoaned(EventBase):
    type: Literal["asset.loaned"] = "asset.loaned"
    schema_version: Literal[1] = 1
    payload: LoanedPayload


class AssetLoanCorrected(EventBase):
    """A correction of an `asset.loaned`: read models take `loan` in place of what `corrects` said."""

    type: Literal["asset.loan_corrected"] = "asset.loan_corrected"
    schema_version: Literal[1] = 1
    payload: LoanCorrectedPayload


class AssetReturned(EventBase):
    type: Literal["asset.returned"] = "asset.returned"
    schema_version: Literal[1] = 1
    payload: ReturnedPayload


class AssetCalibrated(EventBase):
    type: Literal["asset.calibrated"] = "asset.calibrated"
    schema_version: Literal[1] = 1
    payload: CalibratedPayload


class AssetInspected(EventBase):
    type: Literal["asset.inspected"] = "asset.inspected"
    schema_version: Literal[1] = 1
    payload: InspectedPayload


class AssetContractRegistered(EventBase):
    type: Literal["asset.contract_registered"] = "asset.contract_registered"
    schema_version: Literal[1] = 1
    payload: ContractRegisteredPayload


class AssetUsed(EventBase):
    type: Literal["asset.used"] = "asset.used"
    schema_version: Literal[1] = 1
    payload: UsedPayload


class AssetUsageCorrected(EventBase):
    """A correction of an `asset.used`: read models take `usage` in place of what `corrects` said."""

    type: Literal["asset.usage_corrected"] = "asset.usage_corrected"
    schema_version: Literal[1] = 1
    payload: UsageCorrectedPayload


class AssetValuationUpdated(EventBase):
    type: Literal["asset.valuation_updated"] = "asset.valuation_updated"
    schema_version: Literal[1] = 1
    payload: ValuationUpdatedPayload


class AssetDecommissioned(EventBase):
    type: Literal["asset.decommissioned"] = "asset.decommissioned"
    schema_version: Literal[1] = 1
    payload: DecommissionedPayload


ASSET_EVENTS = (
    AssetRegistered,
    AssetDetailsCorrected,
    AssetIdentifierLinked,
    AssetAccepted,
    AssetCommissioned,
    AssetRelocated,
    AssetStatusChanged,
    AssetLoaned,
    AssetLoanCorrected,
    AssetReturned,
    AssetCalibrated,
    AssetInspected,
    AssetContractRegistered,
    AssetUsed,
    AssetUsageCorrected,
    AssetValuationUpdated,
    AssetDecommissioned,
)
