"""Tables of the `work_orders` projection (all prefixed `work_orders_`).

- `events`: the timeline, one row per work-order event with the fields the rules need. A work
  order's row is recomputed from its whole timeline, so the row never depends on arrival order.
- `orders`: one row per work order: lifecycle state, SLA clocks, approval, cost, downtime.
- `reports`: further reports of an open work order's fault (`workorder.report_added`, e.g. a second
  nurse scanning the same device): who reported what, without touching the lifecycle.
- `breaches`: each SLA breach concluded, once per (work order, kind, level).
- `assets`, `identifiers`: this projection's own copy of the few asset facts it groups by
  (category, department, name) and of the identifier crosswalk that resolves a work order's
  asset reference. It never reads another projection's tables.
- `usage`: `asset.used` intervals, for the utilisation KPI (projections.work_orders.kpis).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

from projections.runtime.sqltypes import ExactDecimal, UtcDateTime

NAME = "work_orders"
METADATA = MetaData()

events = Table(
    f"{NAME}_events",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("workorder_id", String(64), nullable=False, index=True),
    Column("event_type", String(40), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("source_system", String(16), nullable=False),
    Column("site", String(64), nullable=False),
    Column("raw_ref", Text),
    Column("actor", Text),  # requested_by, approver, engineer or closed_by
    Column("team", Text),
    Column("note", Text),  # symptom, reason or resolution
    Column("level", Integer),  # approval level
    Column("amount", ExactDecimal),  # approved amount, or the completion's cost
    Column("parts_amount", ExactDecimal),  # priced parts of a completion, in `currency`
    Column("currency", String(3)),
    Column("labour_hours", ExactDecimal),
    Column("downtime_minutes", Integer),
    Column("asset_scheme", String(40)),
    Column("asset_value", Text),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("priority", String(16)),
    Column("channel", String(16)),
)

orders = Table(
    f"{NAME}_orders",
    METADATA,
    Column("workorder_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, index=True),  # ?status=open, the main question
    Column("status_at", UtcDateTime, nullable=False),
    Column("priority", String(16)),
    # The asset as the request named it, and the hub id minted from that identifier; the
    # crosswalk (`identifiers.minted_id`) resolves it to the linked asset at query time.
    Column("asset_scheme", String(40)),
    Column("asset_value", Text, index=True),
    Column("asset_ref", String(64)),  # indexed by ix_work_orders_orders_kpi (leading column)
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("symptom", Text),
    Column("channel", String(16)),
    Column("requested_by", Text),
    Column("requested_at", UtcDateTime),
    Column("requested_event_id", String(36)),
    Column("site", String(64), nullable=False),
    Column("approval_required", Boolean, nullable=False),
    Column("approval_state", String(16), nullable=False),
    Column("approval_amount", ExactDecimal),
    Column("approval_level", Integer),
    Column("approver", Text),
    Column("approved_at", UtcDateTime),
    Column("rejected_at", UtcDateTime),
    Column("completed_unapproved", Boolean, nullable=False),
    Column("assigned_at", UtcDateTime),
    Column("engineer", Text),
    Column("team", Text),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("closed_at", UtcDateTime),
    Column("cancelled_at", UtcDateTime),
    Column("resolution", Text),
    Column("labour_hours", ExactDecimal),
    Column("parts_cost", ExactDecimal),
    Column("cost", ExactDecimal),
    Column("currency", String(3)),
    # The cost in fen (1/100 of `currency`), when in the configured currency: KPIs add these up
    # in SQL exactly (SQLite has no decimal type; summing decimal text there gives a float).
    Column("cost_minor", BigInteger),
    Column("hold_minutes", Integer, nullable=False),
    Column("on_hold", Boolean, nullable=False),
    Column("down_from", UtcDateTime),
    Column("down_to", UtcDateTime),
    Column("downtime_minutes", Integer),
    Column("response_due_at", UtcDateTime),
    Column("responded_at", UtcDateTime),
    Column("response_stop_at", UtcDateTime),
    Column("resolution_due_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("resolution_stop_at", UtcDateTime),
    Column("response_breach_level", Integer, nullable=False),
    Column("resolution_breach_level", Integer, nullable=False),
    # Earliest moment a not-yet-concluded breach level falls due on a running clock: what
    # `tick` looks at (indexed), so ticking costs nothing for work orders on time.
    Column("next_breach_at", UtcDateTime, index=True),
    Column("last_event_at", UtcDateTime, nullable=False),
    Column("event_count", Integer, nullable=False),
    # The list's order (newest request first): covering, so a deep page is an index walk.
    Index(f"ix_{NAME}_orders_requested", "requested_at", "workorder_id"),
    # Everything projections.work_orders.kpis reads, asset first: its scans read this narrow index instead
    # of the wide rows (about half the time at 50,000 work orders), and ?asset= uses it too.
    Index(
        f"ix_{NAME}_orders_kpi",
        "asset_ref",
        "down_from",
        "down_to",
        "requested_at",
        "completed_at",
        "status",
        "downtime_minutes",
        "cost_minor",
    ),
)

reports = Table(
    f"{NAME}_reports",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("workorder_id", String(64), nullable=False, index=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("symptom", Text, nullable=False),
    Column("note", Text),
    Column("channel", String(16)),
    Column("reported_by", Text),
)

breaches = Table(
    f"{NAME}_breaches",
    METADATA,
    Column("workorder_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("due_at", UtcDateTime, nullable=False),
    Column("event_id", String(36), nullable=False),
)

assets = Table(
    f"{NAME}_assets",
    METADATA,
    Column("asset_id", String(64), primary_key=True),
    Column("name", Text),
    Column("category_code", String(64)),
    Column("category_name", Text),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("last_occurred_at", UtcDateTime),
    Column("decommissioned", Boolean, nullable=False),
)

identifiers = Table(
    f"{NAME}_identifiers",
    METADATA,
    Column("scheme", String(40), primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("asset_id", String(64), nullable=False, index=True),
    # schemas.ids.asset_id_for(identifier): the id a source mints from this identifier when it
    # does not know the hub's; events and work orders filed under it belong to `asset_id`.
    Column("minted_id", String(64), nullable=False, unique=True),
    Index(f"ix_{NAME}_identifiers_value", "value"),  # lookup by any identifier value (?asset=)
)

usage = Table(
    f"{NAME}_usage",
    METADATA,
    Column("event_id", String(36), primary_key=True),
    Column("asset_ref", String(64), nullable=False, index=True),
    Column("started_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
)
