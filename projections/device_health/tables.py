"""Tables of the `device_health` read model (all prefixed `device_health_`).

A device is the subject its telemetry is keyed by (the asset id minted from its identifier);
the golden record it belongs to is resolved when warnings are concluded and when read.
- telemetry: every `asset.telemetry_recorded`, with its figures, codes and metrics (JSON);
- devices: each device's identifier, type, department and latest figures, and `pending_from`:
  the first site day whose judgement new telemetry may have changed (None: judged);
- warnings: early warnings concluded, with their evidence, open until cleared.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Float, Index, Integer, MetaData, String, Table, Text

from projections.runtime.sqltypes import UtcDateTime

NAME = "device_health"
METADATA = MetaData()
ID = 64

telemetry = Table(
    f"{NAME}_telemetry",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("subject", String(ID), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("day", Date, nullable=False),  # site day
    Column("usage_hours", Float),
    Column("power_on_cycles", Integer),
    Column("battery_pct", Float),
    Column("battery_cycles", Integer),
    Column("alarm_count", Integer, nullable=False, default=0),
    Column("alarms", Text, nullable=False, default="[]"),  # JSON: [{code, text, priority}]
    Column("errors", Text, nullable=False, default="[]"),  # JSON: [{code, text}]
    Column("metrics", Text, nullable=False, default="[]"),  # JSON: [{code, system, value, unit, text}]
    Column("source_system", String(16), nullable=False),
    Index(f"ix_{NAME}_telemetry_subject_at", "subject", "at"),
)

devices = Table(
    f"{NAME}_devices",
    METADATA,
    Column("subject", String(ID), primary_key=True),
    Column("scheme", String(40), nullable=False),
    Column("value", String(255), nullable=False),
    Column("device_type", String(100)),
    Column("dept_code", String(100)),
    Column("dept_name", String(200)),
    Column("last_at", UtcDateTime, nullable=False),
    Column("last_event_id", String(36), nullable=False),
    Column("usage_hours", Float),
    Column("power_on_cycles", Integer),
    Column("battery_pct", Float),
    Column("battery_cycles", Integer),
    Column("pending_from", Date),
)

warnings = Table(
    f"{NAME}_warnings",
    METADATA,
    Column("warning_id", String(40), primary_key=True),
    Column("subject", String(ID), nullable=False, index=True),
    Column("asset_id", String(ID), nullable=False, index=True),
    Column("rule_id", String(64), nullable=False),
    Column("category", String(16), nullable=False),
    Column("finding_key", String(100), nullable=False, default=""),
    Column("device_type", String(100)),
    Column("dept_code", String(100)),
    Column("dept_name", String(200)),
    Column("severity", String(16), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("baseline", Float),
    Column("observed", Float),
    Column("unit", String(40), nullable=False),
    Column("samples", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("open_work_order", Boolean, nullable=False, default=False),
    Column("workorder_id", String(ID)),
    Column("cleared_at", UtcDateTime),
)
