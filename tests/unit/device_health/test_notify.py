"""Early warnings through the bundled notification rules: to the device's department and admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from sqlalchemy import create_engine

from projections.notifications.projection import Notifications
from projections.notifications.queries import Reader, list_notifications
from projections.notifications.rules import load_rules
from schemas._base import DeptRef, SourceSystem
from schemas.envelope import Source
from schemas.telemetry import AssetEarlyWarning, EarlyWarningPayload, Evidence

AT = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: outside quiet hours
SOURCE = Source(
    system=SourceSystem.HUB, site="main", message_id="EW-1", adapter_version="hub/device_health/1"
)


def _warning() -> AssetEarlyWarning:
    return AssetEarlyWarning(
        event_id=uuid4(), occurred_at=AT, recorded_at=AT, source=SOURCE, subject="AST-VENT-7",
        payload=EarlyWarningPayload(
            warning_id="EW-1", rule_id="battery-fade", category="battery", asset_id="AST-VENT-7",
            department=DeptRef(code="0101", name="重症医学科"),
            reason="battery capacity falls 0.52 points a day over 30 days",
            evidence=Evidence(baseline=Decimal("-0.15"), observed=Decimal("-0.52"), unit="%/day",
                              window_start=AT - timedelta(days=30), window_end=AT, samples=30),
        ),
    )  # fmt: skip


def test_an_early_warning_reaches_the_devices_department_with_its_reason() -> None:
    """The ICU's viewer sees the battery warning with the figures; another department does not."""
    projection = Notifications(load_rules())
    engine = create_engine("sqlite://")
    projection.metadata.create_all(engine)
    with engine.begin() as conn:
        projection.apply(conn, [_warning()])
        icu, _ = list_notifications(
            conn, Reader(role="viewer", department="重症医学科"), scope_department=None
        )
        other, _ = list_notifications(conn, Reader(role="viewer", department="急诊科"), scope_department=None)
    assert [n["title"] for n in icu] == ["设备预警（电池衰减）：AST-VENT-7"]
    assert "0.52 points a day" in icu[0]["text"]
    assert other == []
