"""Shared base model and value types for canonical events."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class HubModel(BaseModel):
    """Frozen, strict-shaped base: events are facts, and unknown fields are a bug at the producer."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSystem(StrEnum):
    """The systems the hub hears from. `hub` is the hub itself (derived events, people via the API)."""

    HIS = "his"
    HRP = "hrp"
    OA = "oa"
    SPD = "spd"
    FHIR = "fhir"
    BMS = "bms"
    DEVLOG = "devlog"
    HUB = "hub"


NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Money(HubModel):
    """An amount of money. Never a float: ledgers must add up to the fen."""

    amount: Decimal
    currency: Currency = "CNY"


class Identifier(HubModel):
    """One name a source system gives a thing, e.g. scheme `hrp.card`, value `ZC-2019-000123`.

    Schemes in use: `hrp.card`, `spd.code`, `his.code`, `oa.no`, `udi`, `serial`
    (value `<manufacturer>|<serial>`), `gtin`, `item.code`, `eui64` (IEEE EUI-64, 16 upper-case hex
    digits), `ns` (an identifier of a namespace no mapping lists: `<namespace or system>|<value>`),
    `fhir.device` (a FHIR Device.id qualified by its sender: `<base URL or sender>/Device/<id>`).
    """

    scheme: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=40)]
    value: NonEmptyStr


class DeptRef(HubModel):
    """A department as the source named it: code when the source has one, else the name only."""

    code: str | None = None
    name: str | None = None


class LocationRef(HubModel):
    """A place where stock or a device sits: department plus an optional room/store/bed text."""

    department: DeptRef = Field(default_factory=DeptRef)
    location: str | None = None
