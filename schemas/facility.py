"""Facility events: sub-meter readings from building management systems, and energy anomalies.

`facility.meter_readings_recorded` is the source fact (BMS exports, gateway pushes, Modbus polls)
on `canonical.facility.v1`: one series' readings from one chunk of a message, in time order, keyed
by the series (meter and quantity) so a meter's readings stay in order. A year of 15-minute
readings of 2,000 meters is thousands of events, not seventy million. `facility.meter_read` (one
reading) is what the hub emitted before; it stays valid on the log and folds into the same tables.
`facility.anomaly_detected` / `_cleared` are what the energy read model concludes (derived, on
`derived.facility.v1`), each with its evidence: the baseline it compared against, what it
observed, and the window.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas._base import DeptRef, HubModel, NonEmptyStr
from schemas.envelope import EventBase
from schemas.ids import event_id_for

# What a meter measures. Consumption quantities (kWh, m³) add up over time; the others are
# instantaneous (demand, temperatures, positions) and are averaged, never summed.
Quantity = Literal[
    "electricity_kwh",
    "electricity_kw",
    "water_m3",
    "gas_m3",
    "chilled_water_kwh",
    "hot_water_kwh",
    "zone_temp_c",
    "setpoint_c",
    "heating_valve_pct",
    "cooling_valve_pct",
    "damper_pct",
]
CONSUMPTION: frozenset[str] = frozenset(
    {"electricity_kwh", "water_m3", "gas_m3", "chilled_water_kwh", "hot_water_kwh"}
)
UNIT_OF: dict[str, str] = {
    "electricity_kwh": "kWh",
    "electricity_kw": "kW",
    "water_m3": "m3",
    "gas_m3": "m3",
    "chilled_water_kwh": "kWh",
    "hot_water_kwh": "kWh",
    "zone_temp_c": "degC",
    "setpoint_c": "degC",
    "heating_valve_pct": "%",
    "cooling_valve_pct": "%",
    "damper_pct": "%",
}
# `cumulative`: a register that only grows (until rollover or replacement); `interval`: what was
# used in the interval ending at occurred_at; `instant`: a value at occurred_at.
ReadingKind = Literal["cumulative", "interval", "instant"]
# estimated: the source filled it in; replaced: first reading of a new meter (register restarted);
# rollover: the register wrapped past its maximum; manual: read by a person; suspect: the source
# flags it as doubtful.
QualityFlag = Literal["estimated", "replaced", "rollover", "manual", "suspect"]
AnomalyKind = Literal["base_load_leak", "surge", "simultaneous_heating_cooling", "stuck_meter", "gap"]


class MeterPlace(HubModel):
    """Where a meter sits: building, floor, zone, and the department and place the zone maps to."""

    building: NonEmptyStr
    floor: str | None = None
    zone: str | None = None
    department: DeptRef | None = None
    place: str | None = None


class MeterReadPayload(HubModel):
    meter_id: NonEmptyStr  # the meter as the BMS names it
    quantity: Quantity
    kind: ReadingKind
    value: Decimal
    unit: NonEmptyStr
    interval_minutes: int | None = Field(default=None, ge=1, le=1440)  # for kind=interval
    register_max: Decimal | None = Field(default=None, gt=0)  # where a cumulative register wraps
    quality: list[QualityFlag] = Field(default_factory=list)
    place: MeterPlace


class MeterReadingsPayload(HubModel):
    """A block of one series' readings (same meter, quantity, kind, interval and place).

    `readings` are `[time, value]` pairs in time order (compact: a block holds hundreds);
    `quality` gives the flags of the flagged readings only, by their index in `readings`.
    """

    meter_id: NonEmptyStr
    quantity: Quantity
    kind: ReadingKind
    unit: NonEmptyStr
    interval_minutes: int | None = Field(default=None, ge=1, le=1440)  # for kind=interval
    register_max: Decimal | None = Field(default=None, gt=0)
    place: MeterPlace
    readings: list[tuple[AwareDatetime, Decimal]] = Field(min_length=1)
    quality: dict[int, list[QualityFlag]] = Field(default_factory=dict)


class AnomalyPayload(HubModel):
    """An anomaly and its evidence. `baseline` and `observed` are in `unit` per hour (consumption)
    or the quantity's own unit (positions, temperatures); the window is [window_start, window_end)."""

    anomaly_id: NonEmptyStr
    kind: AnomalyKind
    meter_id: str | None = None
    zone: str | None = None
    building: str | None = None
    department: DeptRef | None = None
    window_start: AwareDatetime
    window_end: AwareDatetime
    baseline: Decimal | None = None
    observed: Decimal | None = None
    unit: str | None = None
    reason: NonEmptyStr  # the explanation, in words, with the figures


class AnomalyClearedPayload(HubModel):
    anomaly_id: NonEmptyStr
    kind: AnomalyKind
    meter_id: str | None = None
    zone: str | None = None
    department: DeptRef | None = None
    window_start: AwareDatetime
    window_end: AwareDatetime  # when the condition was last seen
    reason: NonEmptyStr


class FacilityMeterRead(EventBase):
    type: Literal["facility.meter_read"] = "facility.meter_read"
    schema_version: Literal[1] = 1
    payload: MeterReadPayload


class FacilityMeterReadingsRecorded(EventBase):
    type: Literal["facility.meter_readings_recorded"] = "facility.meter_readings_recorded"
    schema_version: Literal[1] = 1
    payload: MeterReadingsPayload

    def unfold(self) -> list[FacilityMeterRead]:
        """The block as single readings, each with the id the single-reading form gives it
        (uuid5 over meter, quantity, kind and time): for readers that want one fact per reading."""
        p = self.payload
        system = self.source.system.value
        return [
            FacilityMeterRead(
                event_id=event_id_for(
                    system, f"meter:{p.meter_id}", f"{p.quantity}:{p.kind}:{at.isoformat()}"
                ),
                occurred_at=at,
                recorded_at=self.recorded_at,
                source=self.source,
                subject=self.subject,
                payload=MeterReadPayload(
                    meter_id=p.meter_id,
                    quantity=p.quantity,
                    kind=p.kind,
                    value=value,
                    unit=p.unit,
                    interval_minutes=p.interval_minutes,
                    register_max=p.register_max,
                    quality=p.quality.get(i, []),
                    place=p.place,
                ),
            )
            for i, (at, value) in enumerate(p.readings)
        ]


class FacilityAnomalyDetected(EventBase):
    type: Literal["facility.anomaly_detected"] = "facility.anomaly_detected"
    schema_version: Literal[1] = 1
    payload: AnomalyPayload


class FacilityAnomalyCleared(EventBase):
    type: Literal["facility.anomaly_cleared"] = "facility.anomaly_cleared"
    schema_version: Literal[1] = 1
    payload: AnomalyClearedPayload


FACILITY_EVENTS = (FacilityMeterRead, FacilityMeterReadingsRecorded)
DERIVED_FACILITY_EVENTS = (FacilityAnomalyDetected, FacilityAnomalyCleared)
