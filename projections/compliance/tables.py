"""Tables of the `compliance` projection (all prefixed `compliance_`).

Facts as they arrive (`assets`, `activities`, `contracts`), and what they make due (`items`, one
row per asset and kind, recomputed from the facts whenever an asset's facts change, so arrival
order never matters). `notices` records each derived event concluded, once per asset x kind x
due date x notice, which is what keeps a tick from concluding it again.

An obligation is `projected` while its due date is the hub's own projection from a start of
service (no calibration or inspection of that kind on record; see projections.compliance.schedule):
it is listed, but no notice is concluded for it until a real record confirms the schedule.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table, Text

from projections.runtime.sqltypes import UtcDateTime

NAME = "compliance"
METADATA = MetaData()

assets = Table(
    f"{NAME}_assets",
    METADATA,
    Column("asset_id", String(64), primary_key=True),
    Column("name", Text),
    Column("category_code", String(64)),
    Column("category_name", Text),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("acquired_on", Date),
    Column("accepted_on", Date),
    Column("commissioned_on", Date),
    Column("site", String(64), nullable=False),
    Column("registered_event_id", String(36)),
    Column("last_occurred_at", UtcDateTime),
    Column("decommissioned", Boolean, nullable=False),
)

activities = Table(
    f"{NAME}_activities",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("asset_id", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # calibration, or the inspection's kind
    Column("done_on", Date, nullable=False),
    Column("result", String(16), nullable=False),
    Column("next_due_on", Date),
    Column("valid_until", Date),
    Column("reference", Text),  # certificate number
    Column("occurred_at", UtcDateTime, nullable=False),
)

contracts = Table(
    f"{NAME}_contracts",
    METADATA,
    Column("asset_id", String(64), primary_key=True),
    Column("contract_no", String(100), primary_key=True),
    Column("kind", String(16), nullable=False),  # contract | warranty
    Column("ends_on", Date),
    Column("vendor", Text),
    Column("event_id", String(36), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)

items = Table(
    f"{NAME}_items",
    METADATA,
    Column("asset_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("ref", Text),  # contract number, certificate number
    Column("due_on", Date, index=True),
    Column("basis", String(16), nullable=False),
    # True while the due date is only the hub's projection (no record of that kind seen yet): shown,
    # never notified; a real calibration or inspection record confirms the schedule.
    Column("projected", Boolean, nullable=False),
    Column("last_done_on", Date),
    Column("last_result", String(16)),
    Column("interval_months", Integer),
    Column("cause_event_id", String(36)),
    Column("active", Boolean, nullable=False),  # false once the asset is decommissioned
    Column("asset_name", Text),
    Column("category_code", String(64)),
    Column("category_name", Text),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("site", String(64), nullable=False),
    # Notices concluded for the current due date (see `notices`): what a tick still has to do.
    Column("due_notice", Boolean, nullable=False),
    Column("overdue_notice", Boolean, nullable=False),
    Column("scheduled", Boolean, nullable=False),
)

notices = Table(
    f"{NAME}_notices",
    METADATA,
    Column("asset_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("due_on", Date, primary_key=True),
    Column("notice", String(16), primary_key=True),  # due | overdue | scheduled
    Column("event_id", String(36), nullable=False),
)
