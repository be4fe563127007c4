"""Energy anomalies through the bundled notification rules: to the zone's department and admins."""

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
from schemas.facility import AnomalyPayload, FacilityAnomalyDetected

AT = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: outside quiet hours
SOURCE = Source(system=SourceSystem.HUB, site="main", message_id="ANM-1", adapter_version="hub/energy/1")


def _anomaly(kind: str) -> FacilityAnomalyDetected:
    return FacilityAnomalyDetected(
        event_id=uuid4(),
        occurred_at=AT,
        recorded_at=AT,
        source=SOURCE,
        subject="MTR-B-3F-W01/water_m3",
        payload=AnomalyPayload(
            anomaly_id=f"ANM-{kind}", kind=kind, meter_id="B-3F-W01", zone="B-3F-ICU", building="B",  # type: ignore[arg-type]
            department=DeptRef(code="0301", name="重症医学科"), window_start=AT - timedelta(hours=4),
            window_end=AT, baseline=Decimal("0.12"), observed=Decimal("0.85"), unit="m3",
            reason="night base load 0.850 m3/h against 0.120 m3/h (median of 20 comparable nights)",
        ),
    )  # fmt: skip


def test_a_leak_notifies_the_zones_department_with_the_evidence() -> None:
    """The ICU's viewer sees the leak with its figures; a silent meter goes to integrators only."""
    projection = Notifications(load_rules())
    engine = create_engine("sqlite://")
    projection.metadata.create_all(engine)
    with engine.begin() as conn:
        projection.apply(conn, [_anomaly("base_load_leak"), _anomaly("gap")])
        icu, _ = list_notifications(
            conn, Reader(role="viewer", department="重症医学科"), scope_department=None
        )
        integrator, _ = list_notifications(conn, Reader(role="integrator"), scope_department=None)
    assert [n["title"] for n in icu] == ["能耗异常（夜间基础负荷偏高（疑似泄漏））：B-3F-ICU"]
    assert "0.850 m3/h against 0.120 m3/h" in icu[0]["text"]
    assert [n["title"] for n in integrator] == ["表计无数据：B-3F-W01"]
