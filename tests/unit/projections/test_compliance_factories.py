"""Builders for the asset events the compliance projection reads, a feed, and a random-stream strategy.

Holds no tests itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Engine, select

from projections.compliance.projection import Compliance
from projections.compliance.tables import items
from projections.runtime.db import write_transaction
from projections.runtime.tracking import apply_batch
from schemas.assets import (
    AcceptedPayload,
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetInspected,
    CalibratedPayload,
    Category,
    CommissionedPayload,
    ContractRegisteredPayload,
    InspectedPayload,
)
from schemas.envelope import EventBase, Source
from tests.unit.projections.factories import decommissioned, eid, registered, relocated
from tests.unit.projections.test_work_orders_factories import to_records

AT = datetime(2024, 1, 1, 2, 0, tzinfo=UTC)
VENTILATOR = Category(code="6854", name="手术室、急救室、诊疗室设备及器具")
BED = Category(code="6856", name="病房护理设备及器具")


def _envelope(label: str, asset: str, at: datetime = AT) -> dict[str, Any]:
    return {
        "event_id": eid(label),
        "occurred_at": at,
        "recorded_at": at,
        "source": Source(system="hrp", site="main", message_id=f"doc-{label}", adapter_version="test-1"),
        "subject": asset,
    }


def calibrated(
    label: str,
    asset: str,
    on: date,
    *,
    valid_until: date | None = None,
    result: str = "passed",
    at: datetime = AT,
) -> AssetCalibrated:
    return AssetCalibrated(
        **_envelope(label, asset, at),
        payload=CalibratedPayload(
            certificate_no=f"JD-{label}", calibrated_on=on, valid_until=valid_until, result=result
        ),
    )


def inspected(
    label: str, asset: str, kind: str, on: date, *, next_due: date | None = None, result: str = "passed"
) -> AssetInspected:
    return AssetInspected(
        **_envelope(label, asset),
        payload=InspectedPayload(kind=kind, inspected_on=on, next_due_on=next_due, result=result),
    )


def commissioned(label: str, asset: str, on: date) -> AssetCommissioned:
    return AssetCommissioned(**_envelope(label, asset), payload=CommissionedPayload(commissioned_on=on))


def accepted(label: str, asset: str, on: date, *, result: str = "passed") -> AssetAccepted:
    return AssetAccepted(**_envelope(label, asset), payload=AcceptedPayload(accepted_on=on, result=result))


def contract(
    label: str, asset: str, number: str, ends: date | None, *, kind: str = "service", at: datetime = AT
) -> AssetContractRegistered:
    return AssetContractRegistered(
        **_envelope(label, asset, at),
        payload=ContractRegisteredPayload(contract_no=number, kind=kind, vendor="GE授权服务商", ends_on=ends),
    )


def ventilator(label: str, asset: str, **details: Any) -> EventBase:
    """asset.registered of a 6854 ventilator in the ICU, acquired 2020-03-15."""
    details.setdefault("category", VENTILATOR)
    details.setdefault("acquired_on", date(2020, 3, 15))
    return registered(label, asset, card=f"ZC-{asset}", **details)


def bed(label: str, asset: str, **details: Any) -> EventBase:
    """asset.registered of a 6856 electric ward bed, acquired 2020-03-15."""
    details.setdefault("name", "电动病床")
    return ventilator(label, asset, category=BED, **details)


class ComplianceFeed:
    """Applies events to a compliance projection, one batch per call; ticks; reads items."""

    def __init__(self, engine: Engine, projection: Compliance | None = None) -> None:
        self.engine = engine
        self.projection = projection or Compliance()
        self.offset = 0

    def __call__(self, *events: EventBase) -> None:
        apply_batch(self.engine, self.projection, to_records(events, start=self.offset))
        self.offset += len(events)

    def tick(self, now: datetime) -> list[EventBase]:
        with write_transaction(self.engine) as conn:
            return list(self.projection.tick(conn, now))

    def items(self, asset: str) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(items).where(items.c.asset_id == asset)).mappings()
            return {r["kind"]: dict(r) for r in rows}


ASSETS = ("A1", "A2")


@st.composite
def compliance_streams(draw: st.DrawFn) -> list[EventBase]:
    """Random asset-fact streams: registrations, moves, commissioning, calibrations, inspections,
    contracts and decommissioning, in any order and repeated."""
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 25))):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))
            continue
        label, asset = f"k{i}", draw(st.sampled_from(ASSETS))
        day = date(2023, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
        at = AT + timedelta(hours=draw(st.integers(0, 48)))
        kind = draw(st.integers(0, 7))
        if kind == 0:
            # One device, one class: conflicting registrations are decided by arrival (first
            # wins, as in the registry), which the order-tolerance property does not claim.
            build = ventilator if asset == "A1" else bed
            out.append(build(label, asset, at=at))
        elif kind == 1:
            out.append(relocated(label, asset, code="ER", name="急诊科", at=at))
        elif kind == 2:
            out.append(commissioned(label, asset, day))
        elif kind == 3:
            result = draw(st.sampled_from(["passed", "failed", "limited"]))
            out.append(
                calibrated(label, asset, day, valid_until=day + timedelta(days=365), result=result, at=at)
            )
        elif kind == 4:
            what = draw(st.sampled_from(["preventive_maintenance", "electrical_safety"]))
            out.append(
                inspected(
                    label, asset, what, day, next_due=draw(st.sampled_from([None, day + timedelta(days=90)]))
                )
            )
        elif kind == 5:
            out.append(contract(label, asset, draw(st.sampled_from(["HT-1", "HT-2"])), day, at=at))
        elif kind == 6:
            out.append(decommissioned(label, asset, at=at))
        else:
            out.append(accepted(label, asset, day))
    return out
