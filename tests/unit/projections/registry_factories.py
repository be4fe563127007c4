"""Builders for every asset event as a given source system sends it, and a feed into the registry."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from projections.assets.registry import AssetRegistry, RegistryConfig, get_asset
from projections.runtime.derived import projection_outbox
from projections.runtime.tracking import apply_batch
from schemas._base import DeptRef, Identifier, LocationRef, Money
from schemas.assets import (
    AssetCalibrated,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetDetails,
    AssetIdentifierLinked,
    AssetLoaned,
    AssetRegistered,
    AssetRegisteredPayload,
    AssetRelocated,
    AssetReturned,
    AssetStatus,
    AssetStatusChanged,
    AssetUsed,
    AssetValuationUpdated,
    CalibratedPayload,
    Category,
    ContractRegisteredPayload,
    DecommissionedPayload,
    IdentifierLinkedPayload,
    LoanedPayload,
    RelocatedPayload,
    ReturnedPayload,
    StatusChangedPayload,
    UsedPayload,
    ValuationUpdatedPayload,
)
from schemas.envelope import EventBase, Source
from schemas.ids import asset_id_for
from tests.unit.projections.factories import eid, records

if TYPE_CHECKING:
    from sqlalchemy import Engine

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ICU = DeptRef(code="0101", name="重症医学科")
ER = DeptRef(code="0102", name="急诊科")
EQUIP = DeptRef(code="0901", name="设备科")
VENT = Category(code="6854", name="手术室、急救室、诊疗室设备及器具")


def mint(scheme: str, value: str) -> str:
    """The hub asset id an adapter mints from an identifier."""
    return asset_id_for(Identifier(scheme=scheme, value=value))


def card(value: str) -> str:
    return mint("hrp.card", value)


def _env(label: str, subject: str, at: datetime | None, system: str) -> dict[str, Any]:
    occurred = at or T0
    return {
        "event_id": eid(label),
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(minutes=5),
        "source": Source(
            system=system,
            site="main",
            message_id=f"msg-{label}",
            raw_ref=f"raw-{label}",
            adapter_version="t-1",
        ),
        "subject": subject,
    }


def reg(
    label: str,
    subject: str,
    *idents: tuple[str, str],
    at: datetime | None = None,
    system: str = "hrp",
    **details: Any,
) -> AssetRegistered:
    """asset.registered naming `idents` ((scheme, value) pairs), a ventilator of the ICU by default."""
    fields: dict[str, Any] = {
        "name": "呼吸机",
        "model": "SV300",
        "department": ICU,
        "category": VENT,
        "status": AssetStatus.IN_USE,
    }
    fields.update(details)
    return AssetRegistered(
        **_env(label, subject, at, system),
        payload=AssetRegisteredPayload(
            identifiers=[Identifier(scheme=s, value=v) for s, v in idents], details=AssetDetails(**fields)
        ),
    )


def hrp(
    label: str, value: str, *more: tuple[str, str], at: datetime | None = None, **details: Any
) -> AssetRegistered:
    """The HRP ledger registering card `value` (subject minted from the card, as the adapter does)."""
    return reg(label, card(value), ("hrp.card", value), *more, at=at, **details)


def link(
    label: str,
    subject: str,
    scheme: str,
    value: str,
    *,
    by: str = "mapping",
    actor: str | None = None,
    at: datetime | None = None,
    system: str = "hrp",
) -> AssetIdentifierLinked:
    return AssetIdentifierLinked(
        **_env(label, subject, at, system),
        payload=IdentifierLinkedPayload(
            identifier=Identifier(scheme=scheme, value=value), linked_by=by, actor=actor
        ),
    )


def status(
    label: str, subject: str, value: str, *, at: datetime | None = None, system: str = "hrp"
) -> AssetStatusChanged:
    return AssetStatusChanged(
        **_env(label, subject, at, system), payload=StatusChangedPayload(status=AssetStatus(value))
    )


def moved(
    label: str, subject: str, dept: DeptRef, place: str | None = None, *, at: datetime | None = None
) -> AssetRelocated:
    to = LocationRef(department=dept, location=place)
    return AssetRelocated(**_env(label, subject, at, "hrp"), payload=RelocatedPayload(to=to))


def loaned(
    label: str,
    subject: str,
    loan_id: str,
    borrower: DeptRef,
    *,
    due: datetime | None = None,
    person: str | None = "张杰",
    at: datetime | None = None,
) -> AssetLoaned:
    return AssetLoaned(
        **_env(label, subject, at, "oa"),
        payload=LoanedPayload(
            loan_id=loan_id, borrower_department=borrower, responsible_person=person, due_at=due
        ),
    )


def returned(label: str, subject: str, loan_id: str, *, at: datetime | None = None) -> AssetReturned:
    when = at or T0
    return AssetReturned(
        **_env(label, subject, when, "oa"), payload=ReturnedPayload(loan_id=loan_id, returned_at=when)
    )


def calibrated(
    label: str,
    subject: str,
    *,
    on: date,
    until: date | None,
    result: str = "passed",
    at: datetime | None = None,
) -> AssetCalibrated:
    return AssetCalibrated(
        **_env(label, subject, at, "hrp"),
        payload=CalibratedPayload(
            certificate_no=f"JD-{label}", calibrated_on=on, valid_until=until, result=result
        ),
    )


def contract(
    label: str, subject: str, number: str, *, ends: date, vendor: str = "迈瑞", at: datetime | None = None
) -> AssetContractRegistered:
    return AssetContractRegistered(
        **_env(label, subject, at, "hrp"),
        payload=ContractRegisteredPayload(
            contract_no=number,
            kind="service",
            vendor=vendor,
            starts_on=date(2024, 1, 1),
            ends_on=ends,
            amount=Money(amount=Decimal("12000.00")),
        ),
    )


def used(label: str, subject: str, *, at: datetime | None = None, system: str = "his") -> AssetUsed:
    return AssetUsed(
        **_env(label, subject, at, system),
        payload=UsedPayload(department=ICU, order_id=f"ORD-{label}", patient_token="tok-secret"),
    )


def valuation(
    label: str, subject: str, period: str, net: str, *, at: datetime | None = None
) -> AssetValuationUpdated:
    return AssetValuationUpdated(
        **_env(label, subject, at, "hrp"),
        payload=ValuationUpdatedPayload(
            period=period,
            accumulated_depreciation=Money(amount=Decimal(1000)),
            net_value=Money(amount=Decimal(net)),
        ),
    )


def scrapped(label: str, subject: str, *, at: datetime | None = None) -> AssetDecommissioned:
    when = at or T0
    return AssetDecommissioned(
        **_env(label, subject, when, "hrp"), payload=DecommissionedPayload(decommissioned_on=when.date())
    )


class Feed:
    """Applies events to a registry one batch per call (at increasing offsets), as the runner does."""

    def __init__(self, engine: Engine, config: RegistryConfig | None = None) -> None:
        self.engine = engine
        self.offset = 0
        self.projection = AssetRegistry(config)

    def __call__(self, *events: EventBase) -> None:
        apply_batch(self.engine, self.projection, records(events, start=self.offset))
        self.offset += len(events)

    def asset(self, asset_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = get_asset(conn, asset_id)
        assert row is not None, asset_id
        return row

    def derived(self) -> list[dict[str, Any]]:
        """Derived events staged by the registry, as JSON objects."""
        with self.engine.connect() as conn:
            values = conn.execute(
                select(projection_outbox.c.value).where(projection_outbox.c.projection == "asset_registry")
            ).scalars()
            return sorted((json.loads(v) for v in values), key=lambda e: e["event_id"])
