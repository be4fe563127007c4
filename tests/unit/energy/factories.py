"""Facility events for the energy tests: one reading per call, places from a tiny campus."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, create_engine

from projections.energy.projection import Energy
from schemas._base import DeptRef, SourceSystem
from schemas.envelope import Source
from schemas.facility import (
    UNIT_OF,
    FacilityMeterRead,
    FacilityMeterReadingsRecorded,
    MeterPlace,
    MeterReadingsPayload,
    MeterReadPayload,
)
from schemas.ids import event_id_for

SOURCE = Source(system=SourceSystem.BMS, site="main", message_id="test", adapter_version="bms/test")
ZONES = {
    "B-3F-ICU": MeterPlace(building="B", floor="3F", zone="B-3F-ICU",
                           department=DeptRef(code="0301", name="重症医学科"), place="ICU 病区"),
    "B-5F-WARD": MeterPlace(building="B", floor="5F", zone="B-5F-WARD",
                            department=DeptRef(code="0501", name="心血管内科")),
    "A-1F-ER": MeterPlace(building="A", floor="1F", zone="A-1F-ER", department=DeptRef(code="0402", name="急诊科")),
}  # fmt: skip


def reading(
    meter: str,
    at: datetime,
    value: float | str,
    *,
    quantity: str = "electricity_kwh",
    kind: str = "cumulative",
    zone: str = "B-3F-ICU",
    register_max: float | None = None,
    quality: tuple[str, ...] = (),
) -> FacilityMeterRead:
    return FacilityMeterRead(
        event_id=event_id_for("bms", f"meter:{meter}", f"{quantity}:{kind}:{at.isoformat()}"),
        occurred_at=at,
        recorded_at=at,
        source=SOURCE,
        subject=f"MTR-{meter}/{quantity}",
        payload=MeterReadPayload(
            meter_id=meter,
            quantity=quantity,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            value=Decimal(str(value)),
            unit=UNIT_OF[quantity],
            register_max=None if register_max is None else Decimal(str(register_max)),
            quality=list(quality),  # type: ignore[arg-type]
            place=ZONES[zone],
        ),
    )


def t(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    """A UTC time in June 2024 (site time is UTC+8)."""
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def engine_with(projection: Energy) -> Engine:
    engine = create_engine("sqlite://")
    projection.metadata.create_all(engine)
    return engine


def block(singles: list[FacilityMeterRead]) -> FacilityMeterReadingsRecorded:
    """One series' single readings as the block the bms translator sends them in."""
    first = singles[0]
    p = first.payload
    return FacilityMeterReadingsRecorded(
        event_id=event_id_for("bms", f"meter:{p.meter_id}", f"block:{singles[0].occurred_at}:{len(singles)}"),
        occurred_at=singles[-1].occurred_at,
        recorded_at=first.recorded_at,
        source=SOURCE,
        subject=first.subject,
        payload=MeterReadingsPayload(
            meter_id=p.meter_id,
            quantity=p.quantity,
            kind=p.kind,
            unit=p.unit,
            interval_minutes=p.interval_minutes,
            register_max=p.register_max,
            place=p.place,
            readings=[(e.occurred_at, e.payload.value) for e in singles],
            quality={i: list(e.payload.quality) for i, e in enumerate(singles) if e.payload.quality},
        ),
    )
