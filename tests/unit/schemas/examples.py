"""One small valid event per event type, built from plain dicts the way a producer would send them.

Payloads fill a few optional fields where the wire form is interesting (Decimal money, the `from`
alias, aware datetimes), so schema checks exercise more than the required minimum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas.catalogue import EVENT_CLASSES, latest_version
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from schemas.envelope import EventBase

DEPT = {"code": "0301", "name": "重症医学科"}
PLACE = {"department": DEPT, "location": "二号库房"}
CARD = {"scheme": "hrp.card", "value": "ZC-2019-000123"}
MONEY = {"amount": "12800.50", "currency": "CNY"}
WHEN = "2024-03-05T10:15:00+08:00"

PAYLOADS: dict[str, dict[str, Any]] = {
    "asset.registered": {"identifiers": [CARD], "details": {"name": "呼吸机", "original_value": MONEY}},
    "asset.details_corrected": {"details": {"model": "SV300"}, "changed_fields": ["model"]},
    "asset.identifier_linked": {
        "identifier": {"scheme": "udi", "value": "0106901234567892"},
        "linked_by": "udi_match",
    },
    "asset.accepted": {"accepted_on": "2024-03-01"},
    "asset.commissioned": {"commissioned_on": "2024-03-02", "department": DEPT},
    "asset.relocated": {"to": PLACE, "from": {"department": {"name": "设备科"}}, "reason": "调拨"},
    "asset.status_changed": {"status": "under_repair", "previous": "in_use"},
    "asset.loaned": {"loan_id": "JY-001", "borrower_department": DEPT, "due_at": WHEN},
    "asset.loan_corrected": {
        "corrects": "3a9e1c2b-7d4f-5e60-8a1b-2c3d4e5f6a7b",
        "loan": {"loan_id": "JY-001", "borrower_department": DEPT, "due_at": WHEN},
        "previous": {"loan_id": "JY-001", "borrower_department": {"name": "重症二病区"}, "due_at": WHEN},
    },
    "asset.returned": {"loan_id": "JY-001", "returned_at": WHEN},
    "asset.calibrated": {"calibrated_on": "2024-02-20", "valid_until": "2025-02-19"},
    "asset.inspected": {"kind": "electrical_safety", "inspected_on": "2024-02-21"},
    "asset.contract_registered": {"contract_no": "HT-88", "kind": "service", "amount": MONEY},
    "asset.used": {"started_at": WHEN, "patient_token": "pt_5f2a9c"},
    "asset.usage_corrected": {
        "corrects": "5b0c7b1e-2f4a-5a53-9d0e-3c1f0a6b9e21",
        "usage": {"started_at": WHEN, "department": DEPT},
        "previous": {"started_at": WHEN},
    },
    "asset.valuation_updated": {"period": "2024-02", "accumulated_depreciation": MONEY, "net_value": MONEY},
    "asset.decommissioned": {"decommissioned_on": "2024-03-04", "reason": "报废"},
    "inventory.item_defined": {"item_code": "HC-1001", "name": "一次性输液器", "price": MONEY},
    "inventory.threshold_set": {"location": PLACE, "minimum": "10", "maximum": "200"},
    "inventory.received": {
        "location": PLACE,
        "quantity": "50",
        "lot": "L2403",
        "expiry": "2026-01-31",
        "item_code": "GZ01004",
        "item_name": "药物洗脱冠脉支架",
    },
    "inventory.transferred": {"from_location": PLACE, "to_location": {"department": DEPT}, "quantity": "5"},
    "inventory.consumed": {"location": PLACE, "quantity": "1", "barcode": {"raw": "(01)06901234567892"}},
    "inventory.consumption_corrected": {
        "corrects": "0e9d6f5a-8c1b-5f0e-a7d2-4b3c2a1f9e80",
        "consumption": {"location": PLACE, "quantity": "1"},
        "previous": {"location": {}, "quantity": "1"},
    },
    "inventory.adjusted": {"location": PLACE, "counted_quantity": "47", "book_quantity": "45"},
    "inventory.disposed": {"location": PLACE, "quantity": "2", "reason": "expired"},
    "workorder.requested": {"asset": CARD, "reporting_department": DEPT, "symptom": "报警无法消除"},
    "workorder.request_corrected": {
        "corrects": "7c1d2e3f-4a5b-5c6d-8e7f-9a0b1c2d3e4f",
        "request": {"asset": CARD, "reporting_department": DEPT, "symptom": "报警无法消除"},
        "previous": {"asset": CARD, "reporting_department": {"name": "ICU二病区"}, "symptom": "报警无法消除"},
    },
    "workorder.approved": {"amount": MONEY},
    "workorder.rejected": {"reason": "保修期内"},
    "workorder.assigned": {"engineer": "E-017"},
    "workorder.started": {},
    "workorder.on_hold": {"reason": "等待配件"},
    "workorder.completed": {
        "parts": [{"name": "流量传感器", "quantity": "1", "cost": MONEY}],
        "downtime_minutes": 90,
    },
    "workorder.closed": {},
    "workorder.cancelled": {},
    "workorder.report_added": {
        "asset": CARD,
        "reporting_department": DEPT,
        "symptom": "屏幕不亮",
        "note": "夜班第二次发现",
        "channel": "scan",
    },
    "inventory.below_minimum": {"item_id": "ITM-1", "location": PLACE, "on_hand": "3", "minimum": "10"},
    "inventory.reorder_requested": {"item_id": "ITM-1", "location": PLACE, "quantity": "100"},
    "compliance.due": {"asset_id": "AST-1", "kind": "calibration", "due_on": "2024-04-01"},
    "compliance.overdue": {"asset_id": "AST-1", "kind": "calibration", "due_on": "2024-03-01"},
    "workorder.scheduled": {"asset_id": "AST-1", "kind": "preventive_maintenance", "due_on": "2024-04-15"},
    "workorder.sla_breached": {
        "workorder_id": "WO-1",
        "kind": "response",
        "due_at": WHEN,
        "escalation_level": 1,
    },
    "asset.identity_conflict": {"identifier": CARD, "asset_ids": ["AST-1", "AST-2"]},
    "notification.sent": {
        "notification_id": "NTF-1",
        "rule": "sla-breach",
        "trigger_event_id": "6f1c3b4e-2a77-5c1d-9e0b-7d4f1a2c8b90",
        "trigger_type": "workorder.sla_breached",
        "title": "工单超时",
        "text": "工单 WO-1 响应超时",
        "recipients": [{"kind": "role", "value": "admin"}, {"kind": "person", "value": "王工"}],
        "channels": ["inbox", "wecom-biomed"],
    },
    "notification.escalated": {
        "notification_id": "NTF-1",
        "rule": "sla-breach",
        "level": 1,
        "recipients": [{"kind": "subject_department"}],
        "unread_since": WHEN,
    },
    "notification.expired": {"notification_id": "NTF-1", "rule": "sla-breach", "level": 2},
    "notification.delivered": {
        "notification_id": "NTF-1",
        "channel": "wecom-biomed",
        "level": 0,
        "outcome": "delivered",
        "status_code": 200,
    },
    "notification.read": {
        "notification_id": "NTF-1",
        "key_id": "k3f9a21c04d7e",
        "reader": "王工",
        "role": "viewer",
    },
    "ops.alert_raised": {
        "alert_id": "his-mllp-silent",
        "rule": "his-mllp-silent",
        "kind": "channel_silent",
        "severity": "critical",
        "title": "HIS MLLP 无消息",
        "text": "his/mllp 已 16 分钟未收到消息 (silent for 16 min, limit 15)",
        "target": "his/mllp",
        "value": 16.0,
        "threshold": 15.0,
        "raised_at": WHEN,
    },
    "ops.alert_cleared": {
        "alert_id": "his-mllp-silent",
        "rule": "his-mllp-silent",
        "kind": "channel_silent",
        "severity": "critical",
        "title": "HIS MLLP 无消息",
        "text": "his/mllp 恢复接收 (a message arrived)",
        "target": "his/mllp",
        "value": 0.0,
        "raised_at": WHEN,
        "cleared_at": WHEN,
    },
    "facility.meter_read": {
        "meter_id": "A-1F-E01",
        "quantity": "electricity_kwh",
        "kind": "cumulative",
        "value": "123456.78",
        "unit": "kWh",
        "register_max": "999999.99",
        "quality": [],
        "place": {
            "building": "A",
            "floor": "1F",
            "zone": "A-1F-ICU",
            "department": {"code": "0301", "name": "重症医学科"},
            "place": "ICU 1F",
        },
    },
    "facility.meter_readings_recorded": {
        "meter_id": "A-1F-E01",
        "quantity": "electricity_kwh",
        "kind": "cumulative",
        "unit": "kWh",
        "register_max": "999999.99",
        "place": {
            "building": "A",
            "floor": "1F",
            "zone": "A-1F-ICU",
            "department": {"code": "0301", "name": "重症医学科"},
            "place": "ICU 1F",
        },
        "readings": [[WHEN, "123456.78"], ["2024-03-05T10:30:00+08:00", "0.05"]],
        "quality": {"1": ["replaced", "estimated"]},
    },
    "facility.anomaly_detected": {
        "anomaly_id": "ANM-1",
        "kind": "base_load_leak",
        "meter_id": "A-1F-W01",
        "zone": "A-1F-ICU",
        "building": "A",
        "department": {"code": "0301", "name": "重症医学科"},
        "window_start": "2024-03-05T18:00:00Z",
        "window_end": "2024-03-05T21:00:00Z",
        "baseline": "0.12",
        "observed": "0.85",
        "unit": "m3",
        "reason": "night flow 0.85 m3/h vs baseline 0.12 m3/h for 3 h",
    },
    "facility.anomaly_cleared": {
        "anomaly_id": "ANM-1",
        "kind": "base_load_leak",
        "meter_id": "A-1F-W01",
        "zone": "A-1F-ICU",
        "window_start": "2024-03-05T18:00:00Z",
        "window_end": "2024-03-06T01:00:00Z",
        "reason": "back to baseline",
    },
    "asset.telemetry_recorded": {
        "device": {"scheme": "eui64", "value": "0012A3FFFE4B5C6D"},
        "device_type": "MDC_DEV_SYS_PT_VENT_MDS",
        "department": DEPT,
        "usage_hours": "12034.5",
        "power_on_cycles": 812,
        "battery_capacity_pct": "87.5",
        "alarms": [{"code": "MDC_EVT_ALARM_PRESS_AWAY_HI", "priority": "high"}],
        "error_codes": [{"code": "E-217", "text": "flow sensor drift"}],
        "metrics": [{"code": "MDC_ATTR_TIME_PD_OP", "value": "12034.5", "unit": "h"}],
    },
    "asset.early_warning": {
        "warning_id": "EW-1",
        "rule_id": "battery-fade",
        "category": "battery",
        "asset_id": "AST-1",
        "department": DEPT,
        "reason": "battery capacity falls 0.42 %/day over 30 days (fleet: 0.02 %/day)",
        "evidence": {
            "baseline": "0.02",
            "observed": "0.42",
            "unit": "%/day",
            "window_start": "2024-03-05T00:00:00Z",
            "window_end": "2024-04-04T00:00:00Z",
            "samples": 30,
        },
        "open_work_order": True,
    },
    "asset.early_warning_cleared": {
        "warning_id": "EW-1",
        "rule_id": "battery-fade",
        "category": "battery",
        "asset_id": "AST-1",
        "reason": "no longer seen",
    },
    "audit.access_recorded": {
        "key_id": "k3f9a21c04d7e",
        "role": "auditor",
        "action": "raw.read",
        "resource": "his:5d41402abc4b2a76b9719d911017c592",
        "outcome": "allowed",
        "method": "GET",
        "path": "/raw/his:5d41402abc4b2a76b9719d911017c592",
        "purpose": "不良事件调查 2024-017",
    },
}


def example_dict(event_type: str) -> dict[str, Any]:
    """The wire form (a JSON-ready dict) of the example event for `event_type`."""
    return {
        "event_id": str(event_id_for("hrp", "export-0001.csv", event_type)),
        "type": event_type,
        "schema_version": latest_version(event_type),
        "occurred_at": WHEN,
        "recorded_at": "2024-03-05T02:16:01.250000Z",
        "source": {
            "system": "hrp",
            "site": "main",
            "message_id": "export-0001.csv",
            "adapter_version": "hrp-1",
        },
        "subject": "AST-1",
        "correlation_id": "corr-1",
        "payload": PAYLOADS[event_type],
    }


def example_event(event_type: str) -> EventBase:
    """The validated model of the example event for `event_type`."""
    return EVENT_CLASSES[event_type].model_validate(example_dict(event_type))
