"""Response models of the HTTP API: what /openapi.json documents and clients can rely on."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class IdentifierOut(_Out):
    """One name a source system gives the asset, e.g. scheme `hrp.card`, value `ZC-2019-000123`."""

    scheme: str
    value: str


class AssetOut(_Out):
    """The registry's golden record of one device. Money amounts are exact decimals (as strings in JSON)."""

    asset_id: str = Field(description="Hub asset id, stable across replays")
    name: str | None
    model: str | None
    manufacturer: str | None
    serial_number: str | None
    udi: str | None
    category_code: str | None
    category_name: str | None
    department_code: str | None
    department_name: str | None
    location: str | None
    status: str | None = Field(description="Harmonised status: in_use, idle, under_repair, ...")
    status_text: str | None = Field(description="The source's own wording of the status")
    acquired_on: date | None
    original_value: Decimal | None
    accumulated_depreciation: Decimal | None
    net_value: Decimal | None
    currency: str | None
    funding_source: str | None
    useful_life_years: Decimal | None
    source_system: str | None = Field(description="System whose event first created the record")
    first_recorded_at: datetime | None
    last_occurred_at: datetime | None = Field(description="Business time of the newest state change applied")
    updated_event_id: str | None = Field(description="Last event applied to this record")
    decommissioned: bool
    identifiers: list[IdentifierOut]


class AssetPage(_Out):
    """One page of assets, ordered by asset id."""

    items: list[AssetOut]
    total: int = Field(description="Assets matching the filters, over all pages")
    limit: int
    offset: int


class HealthOut(_Out):
    """Liveness of the API and reachability of the read-model database."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
    projection_lag: dict[str, int] | None = Field(
        default=None,
        description="Records not yet applied, per projection (when run with projections)",
    )
