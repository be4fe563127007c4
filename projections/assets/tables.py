"""The asset registry's tables, in one MetaData: golden records, crosswalk, history, availability.

- `asset_registry_assets`: one golden record per physical device, keyed by hub asset id. State
  groups (status, location, loan, calibration, inspection) each carry the business time of the
  fact that set them (`*_at`), so a late, older fact never overwrites a newer one.
- `asset_registry_identifiers`: the crosswalk, (value, scheme) -> golden asset id, with the id
  `schemas.ids.asset_id_for` mints from that identifier (`minted_id`): an event keyed by that
  id resolves through it. Value first in the key, so a lookup by value alone uses it.
- `asset_registry_aliases`: record ids that events used but no linked identifier explains
  (an adapter's own asset id, or a provisional id), -> golden id.
- `asset_registry_merges`: every record id merged into another (provisional records, duplicates):
  record_id -> the golden record it lives on now, and the event that merged it.
- `asset_registry_claims`: links of non-card identifiers (UDI, serial, system codes): each
  record's first link of an identifier, and every person's link, with what a conflict they raise
  must carry. Contested identifiers are settled from these (projections.assets.claims).
- `asset_registry_conflicts`: links refused because both sides are anchored by different HRP cards.
- `asset_registry_history`: one row per event, on the golden record it belongs to now.
- `asset_registry_availability` + `asset_registry_kinds`: see projections.assets.availability.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from projections.runtime.sqltypes import ExactDecimal, UtcDateTime

NAME = "asset_registry"
METADATA = MetaData()

ID = 64  # hub asset ids are "AST-" + 20 hex, adapters' own ids are kept short too

assets = Table(
    f"{NAME}_assets",
    METADATA,
    Column("asset_id", String(ID), primary_key=True),
    Column("name", Text),
    Column("model", Text),
    Column("manufacturer", Text),
    Column("serial_number", Text),
    Column("udi", Text),
    Column("category_code", String(64)),
    Column("category_name", Text),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("location", Text),
    Column("status", String(32)),
    Column("status_text", Text),
    Column("acquired_on", Date),
    Column("original_value", ExactDecimal),
    Column("accumulated_depreciation", ExactDecimal),
    Column("net_value", ExactDecimal),
    Column("currency", String(3)),
    Column("funding_source", Text),
    Column("useful_life_years", ExactDecimal),
    Column("source_system", String(16)),
    Column("first_recorded_at", UtcDateTime),
    Column("last_occurred_at", UtcDateTime),
    Column("updated_event_id", String(36)),
    Column("decommissioned", Boolean, nullable=False, default=False),
    Column("decommissioned_on", Date),
    # No asset.registered yet: a record known only from events that named it (usage, loans...).
    Column("provisional", Boolean, nullable=False, default=True),
    Column("status_at", UtcDateTime),
    Column("location_at", UtcDateTime),
    Column("accepted_on", Date),
    Column("acceptance_result", String(16)),
    Column("commissioned_on", Date),
    Column("loan_id", String(100)),
    Column("on_loan", Boolean, nullable=False, default=False),
    Column("loan_borrower_code", String(64)),
    Column("loan_borrower_name", String(200)),
    Column("loan_lender_code", String(64)),
    Column("loan_lender_name", String(200)),
    Column("loan_responsible", Text),
    Column("loan_due_at", UtcDateTime),
    Column("loan_started_at", UtcDateTime),
    Column("loan_returned_at", UtcDateTime),
    Column("loan_at", UtcDateTime),
    Column("calibrated_on", Date),
    Column("calibration_valid_until", Date),
    Column("calibration_result", String(16)),
    Column("calibration_certificate", Text),
    Column("calibration_provider", Text),
    Column("calibration_at", UtcDateTime),
    Column("inspection_kind", String(32)),
    Column("inspected_on", Date),
    Column("inspection_result", String(16)),
    Column("inspection_next_due_on", Date),
    Column("inspection_at", UtcDateTime),
    Column("valuation_period", String(32)),
    Column("last_used_at", UtcDateTime),
    # Contracts as canonical JSON (sorted by number): a handful per device, read with the record.
    Column("contracts", Text),
)

identifiers = Table(
    f"{NAME}_identifiers",
    METADATA,
    Column("value", String(255), nullable=False),
    Column("scheme", String(40), nullable=False),
    Column("asset_id", String(ID), nullable=False, index=True),
    Column("minted_id", String(ID), nullable=False, unique=True),
    Column("linked_by", String(16), nullable=False),
    Column("event_id", String(36), nullable=False),
    PrimaryKeyConstraint("value", "scheme"),
)

aliases = Table(
    f"{NAME}_aliases",
    METADATA,
    Column("alias_id", String(ID), primary_key=True),
    Column("asset_id", String(ID), nullable=False, index=True),
    # The subject of a registration that names no identifier minting it: the source's own id.
    Column("declared", Boolean, nullable=False),
)

merges = Table(
    f"{NAME}_merges",
    METADATA,
    Column("record_id", String(ID), primary_key=True),
    Column("merged_into", String(ID), nullable=False, index=True),
    Column("event_id", String(36), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)

claims = Table(
    f"{NAME}_claims",
    METADATA,
    Column("value", String(255), nullable=False),
    Column("scheme", String(40), nullable=False),
    Column("event_id", String(36), nullable=False),
    # The golden record the linking record lives on (re-pointed when it is merged away).
    Column("asset_id", String(ID), nullable=False, index=True),
    Column("linked_by", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("source_system", String(16), nullable=False),
    Column("site", Text, nullable=False),
    Column("raw_ref", Text),
    Column("correlation_id", Text),
    PrimaryKeyConstraint("value", "scheme", "event_id"),
)

conflicts = Table(
    f"{NAME}_conflicts",
    METADATA,
    Column("conflict_id", String(36), primary_key=True),
    Column("scheme", String(40), nullable=False),
    Column("value", String(255), nullable=False),
    Column("holder_asset_id", String(ID), nullable=False),
    Column("claimant_asset_id", String(ID), nullable=False),
    Column("status", String(16), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("source_system", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("resolved_asset_id", String(ID)),
    Column("resolved_by_event_id", String(36)),
    Index(f"ix_{NAME}_conflicts_identifier", "value", "scheme"),
)

# Clustered on (asset, time) (WITHOUT ROWID on SQLite): a history page is one range read, and a
# merge re-points a record's rows with one range update. Event ids are unique by tracking.
history = Table(
    f"{NAME}_history",
    METADATA,
    Column("asset_id", String(ID), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("record_id", String(ID), nullable=False),
    Column("type", String(64), nullable=False),
    Column("source_system", String(16), nullable=False),
    Column("source_message_id", Text, nullable=False),
    Column("raw_ref", Text),
    Column("summary", Text, nullable=False),
    PrimaryKeyConstraint("asset_id", "occurred_at", "recorded_at", "event_id"),
    sqlite_with_rowid=False,
)

_SUMMARY_COLUMNS = ("department_code", "department_name", "availability", "pool", "ready_until")

availability = Table(
    f"{NAME}_availability",
    METADATA,
    Column("asset_id", String(ID), primary_key=True),
    Column("kind_id", String(32)),
    Column("category_code", String(64)),
    Column("department_code", String(64)),
    Column("department_name", String(200)),
    Column("availability", String(24), nullable=False),
    # Ready only until this day (calibration validity); NULL = no expiry known or required.
    Column("ready_until", Date),
    Column("pool", Boolean, nullable=False),
    # Covering the summary query: a type's devices are counted from the index alone.
    Index(f"ix_{NAME}_availability_kind", "kind_id", *_SUMMARY_COLUMNS),
    Index(f"ix_{NAME}_availability_category", "category_code", *_SUMMARY_COLUMNS),
)

kinds = Table(
    f"{NAME}_kinds",
    METADATA,
    Column("kind_id", String(32), primary_key=True),
    Column("name", Text),
    Column("model", Text),
)
