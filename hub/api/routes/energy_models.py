"""Response models of /energy (the OpenAPI document and the API contract test read these)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsumptionOut(_Out):
    period: str = Field(description="Local hour (2024-06-12T09:00), day (2024-06-12) or month (2024-06)")
    quantity: str = Field(description="electricity_kwh, water_m3, gas_m3, ... (one row per quantity)")
    unit: str
    aggregate: Literal["sum", "mean"] = Field(description="sum: consumption; mean: kW, temperatures, valves")
    value: float
    samples: int = Field(description="Readings that closed in the period")
    previous_period: float | None = Field(description="The period before (month-on-month for months)")
    change_vs_previous_pct: float | None
    same_period_last_year: float | None = Field(description="The same period a year before (year-on-year)")
    change_vs_last_year_pct: float | None
    area_m2: float | None = Field(description="Floor area of the level, where the BMS mapping gives it")
    per_m2: float | None = Field(description="Consumption per m2 (sums only)")
    bed_days: float | None = Field(
        default=None, description="Bed-days of the period (days and months), where the BMS mapping gives them"
    )
    bed_days_basis: Literal["census", "beds"] | None = Field(
        default=None, description="census: occupied bed-days from the HIS census; beds: open beds x days"
    )
    per_bed_day: float | None = Field(default=None, description="Consumption per bed-day (sums only)")


class ConsumptionPage(_Out):
    level: str
    id: str | None
    grain: str
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    items: list[ConsumptionOut]
    total: int

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AnomalyOut(_Out):
    anomaly_id: str
    kind: str
    series: str | None = Field(description="MTR-<meter>/<quantity>; none for a zone's anomaly")
    meter_id: str | None
    zone: str | None
    building: str | None
    dept_code: str | None
    dept_name: str | None
    window_start: datetime
    window_end: datetime
    baseline: float | None = Field(description="What the detector expected (per hour, or % / degC)")
    observed: float | None = Field(description="What it saw")
    unit: str | None
    reason: str = Field(description="The explanation, with the figures")
    cleared_at: datetime | None


class AnomalyPage(_Out):
    items: list[AnomalyOut]
    total: int
    limit: int
    offset: int


class MeterOut(_Out):
    meter_id: str
    quantity: str
    unit: str
    last_at: datetime = Field(description="Its latest reading")


class ZoneOut(_Out):
    building: str
    building_name: str | None = Field(description="The building's name in the BMS mapping")
    floor: str | None
    zone: str | None = Field(description="None for meters placed on a building or floor only")
    dept_code: str | None
    dept_name: str | None
    place: str | None = Field(description="The asset registry's place text within the department")
    location: str | None = Field(
        description="The FHIR Location of that place (GET /fhir/Location/{id}), or of the department"
    )
    area_m2: float | None
    beds: float | None = Field(description="Open beds of the zone, where the BMS mapping gives them")
    meters: list[MeterOut]
    last_at: datetime


class ZonePage(_Out):
    items: list[ZoneOut]
    total: int
    limit: int
    offset: int


class BreakdownOut(_Out):
    level: str = Field(description="The child level: building, floor, zone or meter")
    id: str | None
    name: str | None = Field(description="The mapping's name of a building or zone's place")
    quantity: str
    unit: str
    aggregate: Literal["sum", "mean"]
    value: float
    samples: int
    area_m2: float | None
    per_m2: float | None


class BreakdownPage(_Out):
    level: str
    id: str | None
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    items: list[BreakdownOut]
    total: int

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
