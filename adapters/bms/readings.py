"""One BMS reading -> one `facility.meter_read`: the part CSV rows and JSON pushes share.

Pure. The place comes from the mapping's meter/zone table (meter -> zone -> building, floor,
department, place), else from the zone or building the reading itself names. The event id is
uuid5 over (meter, quantity, kind, time): the same reading from an export, a gateway push and a
Modbus poll is one event, and overlapping daily exports do not count a reading twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters._files.rows import RowProblem
from schemas.facility import CONSUMPTION, UNIT_OF, FacilityMeterRead, MeterPlace, MeterReadPayload
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from adapters.bms.mapping import BmsMapping
    from schemas.envelope import Source

SYSTEM = "bms"


@dataclass(slots=True)
class Reading:
    """What a row or a JSON entry says, before the mapping places it."""

    meter_id: str
    at: datetime
    value: Decimal | None = None  # a register or instant value
    usage: Decimal | None = None  # what was used in the interval ending at `at`
    quantity: str | None = None  # canonical, when the source names it
    interval_minutes: int | None = None
    quality: list[str] = field(default_factory=list)
    building: str | None = None
    floor: str | None = None
    zone: str | None = None


def meter_subject(meter_id: str, quantity: str) -> str:
    """The topic key: one meter's readings of one quantity stay in order."""
    return f"MTR-{meter_id}/{quantity}"


def place_of(reading: Reading, mapping: BmsMapping) -> MeterPlace | RowProblem:
    meter = mapping.meter(reading.meter_id)
    zone_id = (meter.zone if meter else None) or reading.zone
    zone = mapping.zone(zone_id) if zone_id else None
    building = (zone.building if zone else None) or (meter.building if meter else None) or reading.building
    if building is None:
        return RowProblem(
            "meter_id",
            "unknown_meter",
            f"meter {reading.meter_id!r} is not in the mapping's meter table and the reading names "
            "no building (add it under meters:)",
        )
    department = None
    if zone is not None and zone.department is not None:
        entry = mapping.department(zone.department)
        department = entry.ref() if entry is not None else None
    return MeterPlace(
        building=building,
        floor=(zone.floor if zone else None) or (meter.floor if meter else None) or reading.floor,
        zone=zone_id,
        department=department,
        place=zone.place if zone else None,
    )


def build_reading(
    reading: Reading, mapping: BmsMapping, *, source: Source, received_at: datetime
) -> FacilityMeterRead | list[RowProblem]:
    """The event, or the problems that keep the reading from being one."""
    problems: list[RowProblem] = []
    meter = mapping.meter(reading.meter_id)
    quantity = reading.quantity or (meter.quantity if meter else None)
    if quantity is None:
        problems.append(
            RowProblem("quantity", "missing_quantity", "no 计量类型 and the meter is not in the table")
        )
    if reading.value is None and reading.usage is None:
        problems.append(RowProblem("value", "missing_required", "neither a 读数 nor a 用量 value"))
    place = place_of(reading, mapping)
    if isinstance(place, RowProblem):
        problems.append(place)
    if problems or quantity is None or isinstance(place, RowProblem):
        return problems
    value = reading.value if reading.value is not None else reading.usage
    if value is None:  # one of them is there: checked above
        return problems
    register = "cumulative" if quantity in CONSUMPTION else "instant"
    kind = "interval" if reading.value is None else register
    if kind == "interval" and value < 0:
        return [RowProblem("usage", "invalid_value", f"usage {value} is negative")]
    position = f"{quantity}:{kind}:{reading.at.isoformat()}"
    return FacilityMeterRead(
        event_id=event_id_for(SYSTEM, f"meter:{reading.meter_id}", position),
        occurred_at=reading.at,
        recorded_at=received_at,
        source=source,
        subject=meter_subject(reading.meter_id, quantity),
        payload=MeterReadPayload(
            meter_id=reading.meter_id,
            quantity=quantity,
            kind=kind,
            value=value,
            unit=UNIT_OF[quantity],
            interval_minutes=reading.interval_minutes if kind == "interval" else None,
            register_max=meter.register_max if meter is not None and kind == "cumulative" else None,
            quality=sorted({q for q in reading.quality if q != "ok"}),
            place=place,
        ),
    )
