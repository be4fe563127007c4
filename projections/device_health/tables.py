"""Tables of the `device_health` read model (all prefixed `device_health_`).

A device is the subject its telemetry is keyed by (the asset id minted from its identifier);
the golden record it belongs to is resolved when warnings are concluded and when read.
- telemetry: each device's recent raw records (the retention window: its last `raw_days` days,
  rollup.horizon; all of them when `raw_days` is 0), with figures,
  codes and metrics (JSON); older records are folded into `rollups` and removed;
- days: each device-day folded from every record (what the rules judge: the day's last
  counters, mean battery, alarms, error codes), kept for the device's whole history;
- rollups: per device, metric (a figure's name or a coded metric's code), and site-local hour
  and day: count, min, max, sum (mean = sum / count) and last, of the records that left `telemetry`;
- devices: each device's identifier, type, department and latest figures, and `pending_from`:
  the first site day whose judgement new telemetry may have changed (None: judged);
- warnings: early warnings concluded, with their evidence, open until cleared.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Float, Index, Integer, MetaData, String, Table, Text

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

# Sums are kept in millionths (integers): adding integers gives the same total in any order, so a
# replay, a late record or a compaction at another moment gives the same rows, bit for bit.
days = Table(
    f"{NAME}_days",
    METADATA,
    Column("subject", String(ID), primary_key=True),
    Column("day", Date, primary_key=True),  # site day
    Column("records", Integer, nullable=False),
    Column("usage_hours", Float),  # the day's highest (last) cumulative reading
    Column("power_on_cycles", Integer),  # likewise
    Column("battery_micro", BigInteger),  # sum of the day's battery readings, in millionths
    Column("battery_n", Integer, nullable=False),  # how many readings carried one
    Column("alarms", Integer, nullable=False),
    Column("errors", Text, nullable=False),  # JSON: the day's distinct error codes, sorted
    sqlite_with_rowid=False,  # clustered on its key: one B-tree, not a table and an index
)

rollups = Table(
    f"{NAME}_rollups",
    METADATA,
    Column("subject", String(ID), primary_key=True),
    Column("grain", String(4), primary_key=True),  # hour | day (site-local)
    Column("bucket", UtcDateTime, primary_key=True),  # the hour's or the day's start
    Column("metric", String(120), primary_key=True),
    Column("unit", String(40)),
    Column("count", Integer, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("sum_micro", BigInteger, nullable=False),
    Column("last", Float, nullable=False),
    Column("last_at", UtcDateTime, nullable=False),
    Column("last_event_id", String(36), nullable=False),
    sqlite_with_rowid=False,
)
