"""Device telemetry and the early warnings the hub concludes from it.

`asset.telemetry_recorded` is a source fact (IHE PCD-01 ORU^R01, PCD-04 ORU^R40, ESU^U01
equipment status, vendor device logs) on `canonical.asset.v1`, keyed by the asset id minted from
the device identifier (usually its EUI-64): the registry resolves it to the golden record like any
other asset event. `asset.early_warning` / `asset.early_warning_cleared` are what the
`device_health` read model concludes (derived, on `derived.asset.v1`), with the rule, the reason
in words and the evidence (baseline, observed, window).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas._base import DeptRef, HubModel, Identifier, NonEmptyStr
from schemas.envelope import EventBase

# IEEE 11073 alarm priority as PCD-04 and EQU-5 (HL7 table 0367) carry it, plus `info`.
AlarmPriority = Literal["info", "low", "medium", "high"]
WarningCategory = Literal["battery", "errors", "usage", "alarms"]


class TelemetryMetric(HubModel):
    """One observation as the device sent it: its code (`MDC_...` or a vendor code), value, unit."""

    code: NonEmptyStr
    system: str = "MDC"  # coding system: MDC (IEEE 11073-10101), or the vendor's own
    value: Decimal | None = None
    unit: str | None = None  # UCUM or the MDC unit code (MDC_DIM_...), as sent
    text: str | None = None  # a coded or text value (ST/CWE), when not numeric


class DeviceCode(HubModel):
    """An alarm or an error/event code the device reported, with its priority where known."""

    code: NonEmptyStr
    text: str | None = None
    priority: AlarmPriority | None = None


class TelemetryRecordedPayload(HubModel):
    """What a device reported about itself at `occurred_at`. Every figure is optional: sources
    report different subsets; `metrics` keeps every coded observation as sent."""

    device: Identifier  # the identifier the source named the device by (eui64, his.code, serial...)
    device_type: str | None = None  # MDC_DEV_... of the MDS, or the vendor's model
    department: DeptRef | None = None
    usage_hours: Decimal | None = Field(default=None, ge=0)  # cumulative operating hours
    power_on_cycles: int | None = Field(default=None, ge=0)  # cumulative
    battery_capacity_pct: Decimal | None = Field(default=None, ge=0, le=200)  # full-charge capacity vs design
    battery_cycles: int | None = Field(default=None, ge=0)
    alarms: list[DeviceCode] = Field(default_factory=list)
    # Alarms the record summarises when the source counts them instead of listing each (a vendor
    # log's daily 报警次数); readers count `alarm_count` when set, else the listed `alarms`.
    alarm_count: int | None = Field(default=None, ge=0)
    error_codes: list[DeviceCode] = Field(default_factory=list)
    metrics: list[TelemetryMetric] = Field(default_factory=list)


class Evidence(HubModel):
    """What a rule compared: `baseline` (the device's own history, or the fleet), `observed`, in
    `unit`, over [window_start, window_end)."""

    baseline: Decimal | None = None
    observed: Decimal | None = None
    unit: str | None = None
    window_start: AwareDatetime
    window_end: AwareDatetime
    samples: int | None = Field(default=None, ge=0)  # how many points the judgement rests on


class EarlyWarningPayload(HubModel):
    warning_id: NonEmptyStr
    rule_id: NonEmptyStr
    category: WarningCategory
    asset_id: NonEmptyStr  # the golden record when the registry knew it at the time, else the subject
    device_type: str | None = None
    department: DeptRef | None = None
    severity: Literal["warning", "critical"] = "warning"
    reason: NonEmptyStr  # the explanation, in words, with the figures
    evidence: Evidence
    open_work_order: bool = False  # the rule asks for a work order (`workorder.requested` follows)


class EarlyWarningClearedPayload(HubModel):
    warning_id: NonEmptyStr
    rule_id: NonEmptyStr
    category: WarningCategory
    asset_id: NonEmptyStr
    department: DeptRef | None = None
    reason: NonEmptyStr


class AssetTelemetryRecorded(EventBase):
    type: Literal["asset.telemetry_recorded"] = "asset.telemetry_recorded"
    schema_version: Literal[1] = 1
    payload: TelemetryRecordedPayload


class AssetEarlyWarning(EventBase):
    type: Literal["asset.early_warning"] = "asset.early_warning"
    schema_version: Literal[1] = 1
    payload: EarlyWarningPayload


class AssetEarlyWarningCleared(EventBase):
    type: Literal["asset.early_warning_cleared"] = "asset.early_warning_cleared"
    schema_version: Literal[1] = 1
    payload: EarlyWarningClearedPayload


TELEMETRY_EVENTS = (AssetTelemetryRecorded,)
DERIVED_TELEMETRY_EVENTS = (AssetEarlyWarning, AssetEarlyWarningCleared)
