"""Tables of the `notifications` read model (all prefixed `notifications_`)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text

from projections.runtime.sqltypes import UtcDateTime

NAME = "notifications"
METADATA = MetaData()

notifications = Table(
    f"{NAME}_notifications",
    METADATA,
    Column("notification_id", String(40), primary_key=True),
    Column("rule", String(100), nullable=False),
    Column("trigger_event_id", String(36), nullable=False),
    Column("trigger_type", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    # Where the department comes from when read: the event itself (stock), or the device or
    # work order it names, looked up in the tables below (so arrival order never matters).
    Column("asset_id", String(64)),
    Column("workorder_id", String(64)),
    Column("dept_code", String(100)),
    Column("dept_name", String(200)),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("channels", Text, nullable=False),  # space-separated channel names
    Column("urgent", Boolean, nullable=False),
    Column("dedup_key", String(400), nullable=False, index=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("deliver_at", UtcDateTime, nullable=False),  # after quiet hours, for non-urgent rules
    Column("sent_at", UtcDateTime),  # None: held back by quiet hours until the next tick after deliver_at
    Column("level", Integer, nullable=False),  # escalation levels reached (0: first recipients only)
    Column("escalated_at", UtcDateTime),
    Column("expired_at", UtcDateTime),
)

recipients = Table(
    f"{NAME}_recipients",
    METADATA,
    Column("notification_id", String(40), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("value", String(200), primary_key=True),
)

receipts = Table(
    f"{NAME}_receipts",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("notification_id", String(40), nullable=False, index=True),
    Column("key_id", String(64), nullable=False),
    Column("reader", String(200)),
    Column("role", String(32), nullable=False),
    Column("read_at", UtcDateTime, nullable=False),
)

deliveries = Table(
    f"{NAME}_deliveries",
    METADATA,
    # One row per channel and level: the outcome of posting it (after the delivery's retries).
    Column("notification_id", String(40), primary_key=True),
    Column("channel", String(100), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("at", UtcDateTime, nullable=False),
)

asset_departments = Table(
    f"{NAME}_asset_departments",
    METADATA,
    Column("event_id", String(36), primary_key=True),  # one row per event: the newest wins when read
    Column("asset_id", String(64), nullable=False, index=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("dept_code", String(100)),
    Column("dept_name", String(200)),
)

workorder_departments = Table(
    f"{NAME}_workorder_departments",
    METADATA,
    Column("workorder_id", String(64), primary_key=True),
    Column("dept_code", String(100)),
    Column("dept_name", String(200)),
)
