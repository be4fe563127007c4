"""The BMS mapping: column synonyms, quantity and quality words, and the meter/zone table.

The meter table is the hierarchy the energy read model aggregates by: a meter sits in a zone, a
zone on a floor of a building and maps to a department and a place of the asset registry. A
reading of a meter the table does not list still lands when the row names its building (a new
meter is not a lost reading); one with neither fails naming the meter.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast, get_args

from pydantic import Field, PrivateAttr

from adapters._files.header import normalise_label
from adapters._files.mapping import FileMapping, Problem, Text, _Model
from adapters._files.mapping_loader import load_mapping_file
from schemas.facility import QualityFlag, Quantity, ReadingKind

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

BMS_FIELDS = frozenset(
    {
        "meter_id", "read_at", "value", "usage", "interval_minutes", "quantity",
        "building", "floor", "zone", "quality", "replaced",
    }
)  # fmt: skip
QUANTITIES: frozenset[str] = frozenset(get_args(Quantity))


class Building(_Model):
    id: Text
    name: Text | None = None
    area_m2: Decimal | None = Field(default=None, gt=0)


class Zone(_Model):
    id: Text
    building: Text
    floor: Text | None = None
    department: Text | None = None  # a code, name or alias of `departments`
    place: Text | None = None  # the asset registry's place text within the department
    area_m2: Decimal | None = Field(default=None, gt=0)
    beds: int | None = Field(default=None, ge=0)  # open beds (开放床位): bed-days when no census is given


class BedDays(_Model):
    """A department's occupied bed-days (实际占用总床日数) in a month, from the HIS census."""

    department: Text
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    bed_days: Decimal = Field(gt=0)


class Meter(_Model):
    id: Text
    quantity: Quantity
    zone: Text | None = None
    building: Text | None = None  # for a meter of a whole building (no zone)
    floor: Text | None = None
    register_max: Decimal | None = Field(default=None, gt=0)
    model: Text | None = None


class Register(_Model):
    """One quantity of a Modbus meter model: holding registers from `address`, big-endian words."""

    quantity: Quantity
    address: int = Field(ge=0, le=65535)
    words: Literal[1, 2] = 2
    scale: Decimal = Decimal(1)
    kind: ReadingKind = "cumulative"


class ModbusTarget(_Model):
    meter: Text
    model: Text
    host: Text
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247)


class ModbusSettings(_Model):
    interval_seconds: float = Field(default=60, gt=0)
    timeout_seconds: float = Field(default=2, gt=0)
    models: dict[str, list[Register]] = Field(default_factory=dict)
    targets: list[ModbusTarget] = Field(default_factory=list)


class BmsMapping(FileMapping):
    """Mapping for BMS exports and pushes (see the module docstring)."""

    known_fields: ClassVar[frozenset[str]] = BMS_FIELDS

    quantity_words: dict[str, Quantity] = Field(default_factory=dict)
    quality_words: dict[str, QualityFlag | Literal["ok"]] = Field(default_factory=dict)
    buildings: list[Building] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    meters: list[Meter] = Field(default_factory=list)
    bed_days: list[BedDays] = Field(default_factory=list)
    modbus: ModbusSettings = Field(default_factory=ModbusSettings)

    _quantities: dict[str, Quantity] = PrivateAttr(default_factory=dict)
    _quality: dict[str, str] = PrivateAttr(default_factory=dict)
    _zones: dict[str, Zone] = PrivateAttr(default_factory=dict)
    _meters: dict[str, Meter] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        super().model_post_init(_context)
        self._quantities = {normalise_label(w): q for w, q in self.quantity_words.items()}
        self._quantities.update({q: cast("Quantity", q) for q in QUANTITIES})  # canonical names are words too
        self._quality = {normalise_label(w): f for w, f in self.quality_words.items()}
        self._zones = {z.id: z for z in self.zones}
        self._meters = {m.id: m for m in self.meters}

    @property
    def quantity_table(self) -> dict[str, Quantity]:
        return self._quantities

    @property
    def quality_table(self) -> dict[str, str]:
        return self._quality

    def meter(self, meter_id: str) -> Meter | None:
        return self._meters.get(meter_id)

    def zone(self, zone_id: str) -> Zone | None:
        return self._zones.get(zone_id)

    def areas(self) -> dict[tuple[str, str], float]:
        """(level, id) -> floor area in m2 where the mapping gives it: buildings and zones as
        listed, floors and departments as the sum of their zones, the campus as the buildings'."""
        out: dict[tuple[str, str], float] = {}
        for b in self.buildings:
            if b.area_m2 is not None:
                out["building", b.id] = float(b.area_m2)
                out["campus", ""] = out.get(("campus", ""), 0.0) + float(b.area_m2)
        for z in self.zones:
            if z.area_m2 is None:
                continue
            out["zone", z.id] = float(z.area_m2)
            keys = [("floor", f"{z.building}/{z.floor}")] if z.floor else []
            entry = self.department(z.department) if z.department else None
            if entry is not None:
                keys += [("department", entry.code), ("department", entry.name)]
            for key in keys:
                out[key] = out.get(key, 0.0) + float(z.area_m2)
        return out

    def beds(self) -> dict[tuple[str, str], float]:
        """(level, id) -> open beds: zones as listed; floors, buildings, departments and the
        campus as the sum of their zones'."""
        out: dict[tuple[str, str], float] = {}
        for z in self.zones:
            if not z.beds:
                continue
            keys = [("zone", z.id), ("building", z.building), ("campus", "")]
            keys += [("floor", f"{z.building}/{z.floor}")] if z.floor else []
            entry = self.department(z.department) if z.department else None
            if entry is not None:
                keys += [("department", entry.code), ("department", entry.name)]
            for key in keys:
                out[key] = out.get(key, 0.0) + z.beds
        return out

    def occupied_bed_days(self) -> dict[tuple[str, str, str], float]:
        """(level, id, month) -> occupied bed-days: each department's census (by code and by
        name); the campus's for a month when every department with beds has one (a partial sum
        would read as a lower-energy hospital)."""
        out: dict[tuple[str, str, str], float] = {}
        given: dict[str, dict[str, float]] = {}
        for row in self.bed_days:
            entry = self.department(row.department)
            names = [entry.code, entry.name] if entry is not None else [row.department]
            for name in names:
                out["department", name, row.month] = float(row.bed_days)
            given.setdefault(row.month, {})[names[0]] = float(row.bed_days)
        bedded = {
            e.code for z in self.zones if z.beds and z.department and (e := self.department(z.department))
        }
        for month, census in given.items():
            if bedded and bedded <= set(census):
                out["campus", "", month] = sum(census.values())
        return out

    def place_names(self) -> dict[tuple[str, str], str]:
        """(level, id) -> the name the mapping gives: buildings' names and zones' places."""
        out = {("building", b.id): b.name for b in self.buildings if b.name}
        out.update({("zone", z.id): z.place for z in self.zones if z.place})
        return out

    def problems(self) -> list[Problem]:
        return [*super().problems(), *self._bms_problems()]

    def _bms_problems(self) -> Iterator[Problem]:
        buildings = {b.id for b in self.buildings}
        for i, zone in enumerate(self.zones):
            if buildings and zone.building not in buildings:
                yield ("zones", i, "building"), f"zone {zone.id}: building {zone.building!r} is not listed"
            if zone.department is not None and self.department(zone.department) is None:
                yield ("zones", i, "department"), f"zone {zone.id}: {zone.department!r} is not in departments"
        seen: set[str] = set()
        for i, meter in enumerate(self.meters):
            if meter.id in seen:
                yield ("meters", i, "id"), f"meter {meter.id} is listed twice"
            seen.add(meter.id)
            if meter.zone is None and meter.building is None:
                yield ("meters", i), f"meter {meter.id}: needs a zone or a building"
            elif meter.zone is not None and meter.zone not in self._zones:
                yield ("meters", i, "zone"), f"meter {meter.id}: zone {meter.zone!r} is not listed"
        yield from self._census_problems()
        for i, target in enumerate(self.modbus.targets):
            if target.model not in self.modbus.models:
                yield ("modbus", "targets", i, "model"), f"unknown meter model {target.model!r}"

    def _census_problems(self) -> Iterator[Problem]:
        for i, census in enumerate(self.bed_days):
            if self.department(census.department) is None:
                yield ("bed_days", i, "department"), f"{census.department!r} is not in departments"


def load_bms_mapping(path: Path) -> BmsMapping:
    """Load and validate a BMS mapping; `extends: default` builds on the bundled mapping.yaml."""
    return load_mapping_file(path, BmsMapping, default=DEFAULT_MAPPING)


def default_mapping() -> BmsMapping:
    return load_bms_mapping(DEFAULT_MAPPING)
