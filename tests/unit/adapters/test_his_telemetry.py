"""IHE PCD-01 / PCD-04 observations and ESU alert levels -> `asset.telemetry_recorded`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from schemas._base import Identifier
from schemas.ids import asset_id_for
from schemas.telemetry import AssetTelemetryRecorded
from tests.unit.adapters.test_his_samples import hl7, run, sample

EUI = "0012A3FFFE4B5C6D"
CORPUS = Path("/work/shared/corpus/hl7v2")
MSH = "MSH|^~\\&|VENT_GW|XXRMYY|HUB|XXRMYY|20240612120005||ORU^R01|{cid}|P|2.6"


def _telemetry(payload: bytes) -> list[AssetTelemetryRecorded]:
    result = run(payload)
    assert not result.failures, result.failures
    return [e.event for e in result.events if isinstance(e.event, AssetTelemetryRecorded)]


def _ventilator(*observations: str) -> list[AssetTelemetryRecorded]:
    """A PCD-01 of one ventilator MDS (the EUI-64 on its row) and `observations` under it."""
    mds = f"OBX|1||70001^MDC_DEV_SYS_PT_VENT_MDS^MDC|1.0.0.0|||||||X|||||||{EUI}^^{EUI}^EUI-64"
    return _telemetry(hl7(MSH.format(cid="PCD-V"), mds, *observations))


class TestPcd01:
    def test_the_ventilators_counters_become_one_telemetry_event_on_its_eui64(self) -> None:
        """The PCD-01 sample gives one telemetry event keyed by the asset minted from the EUI-64."""
        (event,) = _telemetry(sample("16_oru_r01_pcd01_ventilator_eui64.hl7"))
        p = event.payload
        assert event.subject == asset_id_for(Identifier(scheme="eui64", value=EUI))
        assert p.device == Identifier(scheme="eui64", value=EUI)
        assert p.device_type == "MDC_DEV_SYS_PT_VENT_MDS"
        assert (p.usage_hours, p.power_on_cycles) == (Decimal("12034.5"), 812)
        assert (p.battery_capacity_pct, p.battery_cycles) == (Decimal("87.5"), 214)
        assert [(c.code, c.text) for c in p.error_codes] == [("E-217", "流量传感器漂移")]
        assert p.department is not None
        assert p.department.code == "0101"

    def test_every_mdc_observation_is_kept_with_its_unit(self) -> None:
        """Clinical observations are metrics too, each with the MDC unit the device sent."""
        (event,) = _telemetry(sample("16_oru_r01_pcd01_ventilator_eui64.hl7"))
        metrics = {m.code: (m.value, m.unit) for m in event.payload.metrics}
        assert metrics["MDC_RESP_RATE"] == (Decimal(16), "MDC_DIM_RESP_PER_MIN")
        assert metrics["MDC_VOL_AWAY_TIDAL"] == (Decimal(450), "MDC_DIM_MILLI_L")

    def test_the_device_is_also_recorded_as_used(self) -> None:
        """PCD-01 keeps giving `asset.used` for the same device (the ORU^R01 door is shared)."""
        result = run(sample("16_oru_r01_pcd01_ventilator_eui64.hl7"))
        types = sorted(e.event.type for e in result.events)
        assert types == ["asset.telemetry_recorded", "asset.used"]
        assert len({e.event.subject for e in result.events}) == 1

    def test_no_field_of_the_pcd01_sample_is_unclaimed(self) -> None:
        """Field accounting: every non-empty field is read or deliberately ignored."""
        result = run(sample("16_oru_r01_pcd01_ventilator_eui64.hl7"))
        assert result.accounting.unclaimed == {}

    def test_observations_of_no_device_are_skipped_with_a_reason(self) -> None:
        """An MDC observation with no OBX-18 on it or its MDS names no device: none is invented."""
        payload = hl7(
            MSH.format(cid="PCD-X1"),
            "OBX|1|NM|0^MDC_ATTR_TIME_PD_OP_CUMUL^MDC|1.0.0.1|100|264352^MDC_DIM_HR^MDC|||||R",
        )
        result = run(payload)
        assert not [e for e in result.events if e.event.type == "asset.telemetry_recorded"]
        assert any("name no device" in s for s in result.skipped)

    def test_an_unknown_namespace_device_is_kept_qualified(self) -> None:
        """A device in a namespace the mapping lists nowhere is kept (scheme ns), never dropped."""
        payload = hl7(
            MSH.format(cid="PCD-X2"),
            "OBX|1||70001^MDC_DEV_SYS_PT_VENT_MDS^MDC|1.0.0.0|||||||X|||||||SV300-77^MINDRAY",
            "OBX|2|NM|0^MDC_ATTR_BATT_CAP_FULL_PCT^MDC|1.0.0.3|70|262688^MDC_DIM_PERCENT^MDC|||||R",
        )
        (event,) = _telemetry(payload)
        assert event.payload.device == Identifier(scheme="ns", value="MINDRAY|SV300-77")
        assert event.payload.battery_capacity_pct == Decimal(70)

    def test_battery_capacity_is_full_charge_over_design_capacity_in_ieee_11073_terms(self) -> None:
        """MDC_ATTR_CAPAC_BATT_FULL / _SPECN (by reference id or by bare term code) give the %."""
        (event,) = _ventilator(
            "OBX|2|NM|68023^MDC_ATTR_CAPAC_BATT_FULL^MDC|1.0.0.1|1700|MAH|||||R",
            "OBX|3|NM|68025|1.0.0.2|2000|MAH|||||R",
            "OBX|4|NM|67996^MDC_ATTR_VAL_BATT_CHARGE^MDC|1.0.0.3|40|262688^MDC_DIM_PERCENT^MDC|||||R",
        )
        assert event.payload.battery_capacity_pct == Decimal("85.0")
        charge = {m.code: m.value for m in event.payload.metrics}["MDC_ATTR_VAL_BATT_CHARGE"]
        assert charge == Decimal(40)  # the state of charge stays a metric, not the capacity

    def test_capacities_in_different_units_give_no_percentage(self) -> None:
        """mAh over Ah would be 1000 times off: no figure is better than a wrong one."""
        (event,) = _ventilator(
            "OBX|2|NM|68023^MDC_ATTR_CAPAC_BATT_FULL^MDC|1.0.0.1|1700|MAH|||||R",
            "OBX|3|NM|68025^MDC_ATTR_CAPAC_BATT_SPECN^MDC|1.0.0.2|2|AH|||||R",
        )
        assert event.payload.battery_capacity_pct is None
        assert {m.code for m in event.payload.metrics} >= {
            "MDC_ATTR_CAPAC_BATT_FULL",
            "MDC_ATTR_CAPAC_BATT_SPECN",
        }


class TestAlarms:
    def test_a_pcd04_alarm_carries_its_code_and_priority(self) -> None:
        """ORU^R40: the MDC_EVT_ observation is an alarm, OBX-8 PH its high priority."""
        (event,) = _telemetry(sample("17_oru_r40_pcd04_alarm.hl7"))
        (alarm,) = event.payload.alarms
        assert (alarm.code, alarm.text, alarm.priority) == ("MDC_EVT_PRESS_AWAY_HI", "气道压力高", "high")
        assert event.subject == asset_id_for(Identifier(scheme="eui64", value=EUI))

    def test_an_equ_warning_alert_level_is_an_alarm_beside_the_status(self) -> None:
        """ESU^U01 with EQU-5 W: the status change, and the alert as telemetry on the same asset."""
        result = run(sample("18_esu_u01_warning_alert.hl7"))
        by_type = {e.event.type: e.event for e in result.events}
        assert set(by_type) == {"asset.status_changed", "asset.telemetry_recorded"}
        telemetry = by_type["asset.telemetry_recorded"]
        assert isinstance(telemetry, AssetTelemetryRecorded)
        assert [a.code for a in telemetry.payload.alarms] == ["EQU-ALERT-W"]
        assert telemetry.subject == by_type["asset.status_changed"].subject

    def test_a_normal_equipment_status_records_no_telemetry(self) -> None:
        """An EQU without a warning level gives the status change only."""
        result = run(sample("07_esu_u01_ventilator_in_use.hl7"))
        assert [e.event.type for e in result.events] == ["asset.status_changed"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="third-party HL7 corpus not present")
class TestThirdPartyCorpus:
    def test_third_party_results_carry_no_device_telemetry_and_still_translate(self) -> None:
        """Lab results (LOINC/local codes, no MDC) from other vendors produce no telemetry and no crash."""
        seen = 0
        for path in sorted(CORPUS.glob("*ORU*.hl7")):
            result = run(path.read_bytes())
            seen += 1
            assert not [e for e in result.events if e.event.type == "asset.telemetry_recorded"], path.name
        assert seen >= 3
