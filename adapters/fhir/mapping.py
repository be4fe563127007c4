"""The FHIR mapping: limits, version choice, identifier systems, code systems, locations, code maps.

FHIR resources are self-describing, so this mapping holds only what FHIR cannot say about a
hospital: which `Identifier.system` URIs are its HRP card numbers or HIS device codes (the
`namespaces:` table; `identifier_systems:` is its older name, still read), which
coding systems are its SPD item codes (so a FHIR delivery lands on the same item as the SPD
item master), which Location references are which department or store, and how FHIR's codes map
to the hub's (device status, task priority, task status -> work-order step). It reuses the file
adapters' mapping model and loader, so errors name the file and line; the tabular keys of that
model (columns, header, sheet...) mean nothing here and are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from adapters._files.header import normalise_label
from adapters._files.mapping import FileMapping, Problem, Text
from adapters._files.mapping_loader import load_mapping_file
from schemas._base import DeptRef, LocationRef
from schemas.assets import AssetStatus  # noqa: TC001 - pydantic reads it at runtime
from schemas.work_orders import Priority  # noqa: TC001 - pydantic reads it at runtime

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

Scheme = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=40)]
VersionChoice = Literal["auto", "R5", "R4B"]
DeviceStatus = Literal["active", "inactive", "entered-in-error", "unknown"]
FhirPriority = Literal["routine", "urgent", "asap", "stat"]
TaskStatus = Literal[
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
    "on-hold", "failed", "completed", "entered-in-error",
]  # fmt: skip
# What a Task in a status means for the work order, besides the request itself.
TaskStep = Literal[
    "skip", "requested", "assigned", "started", "on_hold", "completed", "cancelled", "rejected"
]
DeliveryStatus = Literal["in-progress", "completed", "abandoned", "entered-in-error"]
ReportStatus = Literal["draft", "requested", "active", "entered-in-error"]
Channel = Literal["scan", "oa", "phone", "api", "other"]
ItemNamespace = Literal["spd", "fhir"]

# Keys of the tabular model that mean nothing for FHIR: setting one is a mistake.
_TABULAR_ONLY = ("columns", "sheet", "header", "summary_markers", "skip_markers", "required", "date_formats")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Model):
    """Refuse bodies beyond these sizes before validating them (memory is the hub's, not theirs)."""

    max_bytes: int = Field(default=10_000_000, ge=1)
    max_entries: int = Field(default=1_000, ge=1)
    max_depth: int = Field(default=48, ge=4, le=200)


class Versions(_Model):
    """Which FHIR release a body without `fhirVersion` in its Content-Type is read as.

    `auto`: R5 first; when R5 validation fails and R4B succeeds, R4B (and the choice is logged).
    """

    default: VersionChoice = "auto"


class LocationEntry(_Model):
    """A FHIR Location, as references name it, and where it is for the hub.

    `match`: Location references (`Location/icu-5f`), Location identifier values or display
    names that mean this place. `kind: department` makes a delivery there a transfer from the
    default store; `store` makes it a receipt into stock. `department` is a code of the
    departments list (a store has its own code there, as in the SPD mapping). `location` is the
    place text devices get (住院部5楼ICU); `bin` the spot stock events name inside the department
    or store (SPD's 货位), usually none, so FHIR stock lands on the same rows as SPD's.
    """

    match: list[Text] = Field(min_length=1)
    kind: Literal["department", "store"]
    department: Text | None = None
    location: Text | None = None
    bin: Text | None = None


class TaskRules(_Model):
    """Which Tasks are work orders and what each Task.status means for one."""

    codes: list[Text] = Field(default_factory=list)
    channel: Channel = "api"
    statuses: dict[TaskStatus, TaskStep] = Field(default_factory=dict)


class InventoryItemRules(_Model):
    """Whether an InventoryItem defines an item (`inventory.item_defined`).

    Items in the `spd` namespace are defined by the SPD item master; a FHIR InventoryItem for one
    is archived and skipped, so two sources never fight over one item's master data.
    """

    define: bool = True


class FhirMapping(FileMapping):
    """Validated mapping for FHIR REST ingest (single resources and batch/transaction Bundles)."""

    known_fields: ClassVar[frozenset[str]] = frozenset()

    columns: dict[str, Annotated[list[Text], Field(min_length=1)]] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    versions: Versions = Field(default_factory=Versions)
    namespaces: dict[Text, Scheme] = Field(default_factory=dict)
    identifier_systems: dict[Text, Scheme] = Field(default_factory=dict)  # the older name of `namespaces`
    sender: Text | None = None
    device_id_scheme: Scheme = "fhir.device"
    subject_schemes: list[Scheme] = Field(min_length=1)
    device_statuses: dict[DeviceStatus, AssetStatus] = Field(default_factory=dict)
    availability_statuses: dict[Text, AssetStatus] = Field(default_factory=dict)
    category_systems: list[Text] = Field(default_factory=list)
    item_code_systems: dict[Text, ItemNamespace] = Field(default_factory=dict)
    gtin_systems: list[Text] = Field(default_factory=list)
    barcode_systems: list[Text] = Field(default_factory=list)
    locations: list[LocationEntry] = Field(default_factory=list)
    strict_locations: bool = False
    default_store: Text | None = None
    priorities: dict[FhirPriority, Priority] = Field(default_factory=dict)
    task: TaskRules = Field(default_factory=TaskRules)
    delivery_statuses: list[DeliveryStatus] = Field(
        default_factory=lambda: list[DeliveryStatus](["completed"])
    )
    report_statuses: list[ReportStatus] = Field(default_factory=lambda: list[ReportStatus](["active"]))
    inventory_items: InventoryItemRules = Field(default_factory=InventoryItemRules)

    _locations: dict[str, LocationEntry] = PrivateAttr(default_factory=dict)
    _systems: dict[str, str] = PrivateAttr(default_factory=dict)
    _task_codes: frozenset[str] = PrivateAttr(default_factory=frozenset)

    def model_post_init(self, _context: Any, /) -> None:
        super().model_post_init(_context)
        for entry in self.locations:
            for key in entry.match:
                self._locations.setdefault(normalise_label(key), entry)  # clashes: problems()
        self._task_codes = frozenset(normalise_label(code) for code in self.task.codes)
        self._systems = {**self.identifier_systems, **self.namespaces}

    def namespace_scheme(self, system: str | None) -> str | None:
        """The hub scheme of identifiers whose `Identifier.system` is `system`, if the mapping lists it."""
        return self._systems.get(system) if system else None

    def location(self, keys: Iterable[str]) -> LocationEntry | None:
        """The first location entry any of `keys` (reference, identifier value, display) matches."""
        for key in keys:
            entry = self._locations.get(normalise_label(key))
            if entry is not None:
                return entry
        return None

    def location_ref(self, entry: LocationEntry) -> LocationRef:
        """Where a device at a mapped location is: its department (from the code list) and place text."""
        return LocationRef(department=self.dept_ref(entry.department), location=entry.location)

    def stock_ref(self, entry: LocationEntry) -> LocationRef:
        """Where stock at a mapped location sits: its department or store, and its bin if any."""
        return LocationRef(department=self.dept_ref(entry.department), location=entry.bin)

    def dept_ref(self, code: str | None) -> DeptRef:
        if code is None:
            return DeptRef()
        known = self.department(code)
        return known.ref() if known is not None else DeptRef(code=code)

    def store(self) -> LocationRef:
        """Where transfers to departments come from: the default store (or an unnamed one)."""
        entry = self.location([self.default_store]) if self.default_store else None
        return self.stock_ref(entry) if entry is not None else LocationRef(location=self.default_store)

    def task_code_accepted(self, words: Iterable[str]) -> bool:
        """Whether a Task with these code words is a work order (no `task.codes`: every Task is)."""
        if not self._task_codes:
            return True
        return any(normalise_label(word) in self._task_codes for word in words)

    def problems(self) -> list[Problem]:
        return [
            *super().problems(),
            *self._unused_problems(),
            *self._location_problems(),
            *self._namespace_problems(),
        ]

    def _namespace_problems(self) -> Iterator[Problem]:
        for system, scheme in self.identifier_systems.items():
            other = self.namespaces.get(system)
            if other is not None and other != scheme:
                yield (
                    ("identifier_systems", system),
                    f"namespaces maps {system!r} to {other!r}, identifier_systems to {scheme!r}",
                )

    def _unused_problems(self) -> Iterator[Problem]:
        for key in _TABULAR_ONLY:
            if key in self.model_fields_set:
                yield (key,), f"{key!r} applies to CSV/XLSX exports; FHIR bodies describe themselves"

    def _location_problems(self) -> Iterator[Problem]:
        owner: dict[str, int] = {}
        for i, entry in enumerate(self.locations):
            for j, key in enumerate(entry.match):
                previous = owner.setdefault(normalise_label(key), i)
                if previous != i:
                    yield ("locations", i, "match", j), f"{key!r} already matches locations[{previous}]"
            if (
                entry.department is not None
                and self.departments
                and self.department(entry.department) is None
            ):
                yield (
                    ("locations", i, "department"),
                    f"department {entry.department!r} is not in the departments list",
                )
            if entry.kind == "department" and entry.department is None:
                yield ("locations", i, "department"), "a location of kind department must name its department"
        if self.default_store is not None:
            store = self.location([self.default_store])
            if store is None or store.kind != "store":
                yield ("default_store",), f"{self.default_store!r} must match a location of kind store"


def load_fhir_mapping(path: Path) -> FhirMapping:
    """Load and validate a FHIR mapping; `extends: default` builds on the bundled mapping.yaml."""
    return load_mapping_file(path, FhirMapping, default=DEFAULT_MAPPING)


def default_mapping() -> FhirMapping:
    """The bundled mapping, as sites without their own file use it."""
    return load_fhir_mapping(DEFAULT_MAPPING)
