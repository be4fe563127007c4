"""The HIS (HL7 v2) mapping: which fields carry what, and the site's code maps.

Loaded from YAML by the shared loader (adapters/_files/mapping_loader.py: `extends: default`,
duplicate keys refused, every error as `file:line: key: message`). Field references are written
`SEG-F[.C[.S]]` (e.g. `ZFT-3`, `ITM-13.1.1`) and resolve first within the unit being translated
(the FT1 and the segments after it, or the MFE group), then in the whole message.

The patient-token secret is not in the file: the hub supplies it with `with_secret(...)`, and
a message with a PID segment is refused (PatientSecretMissing) until it has.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from adapters._files.header import normalise_label
from adapters._files.mapping import DepartmentEntry
from adapters._files.mapping_loader import load_mapping_file
from adapters.errors import MappingError
from adapters.his.decode import charset_codec
from adapters.his.patient import MIN_SECRET_BYTES
from schemas._base import DeptRef, LocationRef
from schemas.assets import AssetStatus

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters._files.mapping import KeyPath, Problem

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")
_PLACE_CACHE_SIZE = 4096  # distinct (code, text) pairs remembered; LocationRef is frozen, so sharing is safe

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Scheme = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=40)]
# An identifier's namespace (EI-2 namespace id, EI-3 universal id or EI-4 universal id type) ->
# the hub scheme. Sites extend it; EUI-64 needs no entry (it is recognised by its label).
DEFAULT_NAMESPACES: dict[str, str] = {
    "HRP": "hrp.card",
    "HIS": "his.code",
    "SPD": "spd.code",
    "OA": "oa.no",
    "UDI": "udi",
    # UDI issuing agencies, as PRT-10/PRT-16 name them in EI-3 (HL7 v2.9 DEV guidance)
    "GS1": "udi",
    "2.51.1.1": "udi",  # GS1
    "1.0.15961.10.816": "udi",  # HIBCC
    "2.16.840.1.113883.6.18.1.34": "udi",  # ICCBBA
    "2.16.840.1.113883.3.3719": "udi",  # FDA UDI
}
# A bare OBX-18 value is a device when it matches one of these: letters and at least 3 characters
# (VENT-0032, CT-02), never a bare number (an analyser's reference-range limits, channel numbers).
DEFAULT_EQUIPMENT_PATTERNS = [r"(?=.*[A-Za-z])[^\s]{3,}"]
_REF = r"^[A-Z][A-Z0-9]{2}-[1-9]\d*(?:\.[1-9]\d*){0,2}$"
_IGNORE_ENTRY = re.compile(r"[A-Z][A-Z0-9]{2}(?:-[1-9]\d*)?")
FieldRefText = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_REF)]


class PatientSecretMissing(MappingError):
    """A message with a PID arrived before the hub gave the mapping its patient-token secret."""


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A parsed `SEG-F[.C[.S]]` reference."""

    segment: str
    field: int
    component: int | None = None
    subcomponent: int | None = None

    @classmethod
    def parse(cls, text: str) -> FieldRef:
        return _parse_ref(text)

    def __str__(self) -> str:
        return f"{self.segment}-" + ".".join(
            str(n) for n in (self.field, self.component, self.subcomponent) if n
        )


@functools.lru_cache(maxsize=256)
def _parse_ref(text: str) -> FieldRef:
    segment, _, rest = text.partition("-")
    numbers = [int(n) for n in rest.split(".")]
    return FieldRef(segment, numbers[0], *numbers[1:])


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _private(model: BaseModel) -> dict[str, Any]:
    """`model`'s private attributes, read directly. `model._x` goes through BaseModel.__getattr__
    (after the normal lookup fails): microseconds per read, several reads per translated message."""
    return model.__pydantic_private__ or {}


class LocationEntry(_Model):
    """An HL7 location code (PV1-3 / FT1-16 point of care, IVT-2) -> a department and a place."""

    department: Text
    location: str | None = None


class ChargeRules(_Model):
    """Which FT1 lines of a DFT are consumptions of a tracked consumable."""

    transaction_types: list[Text] = Field(default_factory=lambda: ["CG"])
    consumables: Literal["with_udi", "listed", "with_udi_or_listed", "all"] = "with_udi_or_listed"
    consumable_codes: list[Text] = Field(default_factory=list)
    udi_field: FieldRefText | None = None
    default_quantity: Decimal | None = Field(default=None, gt=0)

    def is_listed(self, item_code: str) -> bool:
        """True when FT1-7.1 is listed, exactly or by a `PREFIX*` entry."""
        for code in self.consumable_codes:
            if code.endswith("*") and item_code.startswith(code[:-1]):
                return True
            if code == item_code:
                return True
        return False


class DeviceRules(_Model):
    """How ORU/ORM/OMG messages name the devices they used."""

    equipment_roles: list[Text] = Field(default_factory=lambda: ["EQUIP", "EQ", "DEVICE"])
    equipment_patterns: list[Text] = Field(default_factory=lambda: list(DEFAULT_EQUIPMENT_PATTERNS))

    _compiled: list[re.Pattern[str]] = PrivateAttr(default_factory=list)

    def model_post_init(self, _context: Any, /) -> None:
        compiled: list[re.Pattern[str]] = []
        for pattern in self.equipment_patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error:
                continue  # reported by HisMapping.problems()
        self._compiled = compiled

    def looks_like_equipment(self, value: str) -> bool:
        """True when a bare OBX-18 value matches one of `equipment_patterns` (whole value)."""
        compiled: list[re.Pattern[str]] = _private(self)["_compiled"]
        return any(p.fullmatch(value) for p in compiled)


TelemetryRole = Literal[
    "usage_hours",
    "power_on_cycles",
    "battery_capacity_pct",
    "battery_full_capacity",
    "battery_design_capacity",
    "battery_cycles",
    "error_code",
    "alarm",
]
# Which observation codes carry the figures `asset.telemetry_recorded` names.
# - Battery health from IEEE 11073-10101 terms (partition 1, so OBX-3.1 is 65536 + term code):
#   full-charge capacity MDC_ATTR_CAPAC_BATT_FULL (68023) over design capacity
#   MDC_ATTR_CAPAC_BATT_SPECN (68025), same unit, is the capacity in %. MDC_ATTR_VAL_BATT_CHARGE
#   (67996) is the state of charge, not health: kept as a metric, never read as capacity.
# - Operating hours, power-on count, battery cycle count and error code have no 11073-10101 term
#   that devices agree on; vendors send private codes. The MDC_ATTR_* names below for them are the
#   bundled samples' stand-ins, not standard terms: a site lists its devices' codes.
DEFAULT_TELEMETRY_CODES: dict[str, TelemetryRole] = {
    "MDC_ATTR_CAPAC_BATT_FULL": "battery_full_capacity",
    "68023": "battery_full_capacity",
    "MDC_ATTR_CAPAC_BATT_SPECN": "battery_design_capacity",
    "68025": "battery_design_capacity",
    "MDC_ATTR_TIME_PD_OP_CUMUL": "usage_hours",
    "MDC_ATTR_POWER_ON_CNT": "power_on_cycles",
    "MDC_ATTR_BATT_CAP_FULL_PCT": "battery_capacity_pct",
    "MDC_ATTR_BATT_CYCLE_CNT": "battery_cycles",
    "MDC_ATTR_DEV_ERR_CODE": "error_code",
}


class TelemetryRules(_Model):
    """How device observations (IHE PCD-01/PCD-04 OBX) become `asset.telemetry_recorded`.

    An OBX is a device observation when OBX-3's coding system (OBX-3.3) is in `coding_systems`
    or its code is in `codes`; `codes` (OBX-3.2 reference id, else OBX-3.1) says which figure
    it is; codes starting with one of `alarm_prefixes` are alarms (priority from OBX-8).
    """

    coding_systems: list[Text] = Field(default_factory=lambda: ["MDC"])
    codes: dict[Text, TelemetryRole] = Field(default_factory=lambda: dict(DEFAULT_TELEMETRY_CODES))
    alarm_prefixes: list[Text] = Field(default_factory=lambda: ["MDC_EVT_"])

    def is_device_code(self, system: str, code: str) -> bool:
        systems = {s.upper() for s in self.coding_systems}
        return system.upper() in systems or code in self.codes

    def role(self, code: str) -> TelemetryRole | None:
        if code in self.codes:
            return self.codes[code]
        return "alarm" if any(code.startswith(p) for p in self.alarm_prefixes) else None


class ItemMasterRules(_Model):
    """Where MFN^M16 groups (MFE, ITM, IVT, PKG...) keep each item field and stock level."""

    name: FieldRefText = "ITM-2"
    spec: FieldRefText | None = "ITM-9"
    unit: FieldRefText | None = "PKG-2.2"
    category: FieldRefText | None = "ITM-5.2"
    supplier: FieldRefText | None = "ITM-8"
    price: FieldRefText | None = "ITM-13.1.1"
    currency: FieldRefText | None = "ITM-13.1.2"
    gtin: FieldRefText | None = None
    udi_di: FieldRefText | None = None
    high_value_field: FieldRefText | None = "ITM-4.1"
    high_value_codes: list[Text] = Field(default_factory=lambda: ["HV"])
    minimum: FieldRefText = "IVT-24"
    reorder_point: FieldRefText | None = "IVT-24"
    maximum: FieldRefText | None = None
    order_amount: FieldRefText | None = "IVT-25"


class PatientRules(_Model):
    """Which PID-3 repetition names the patient: the first whose CX-5 type is listed, else the first."""

    identifier_types: list[Text] = Field(default_factory=lambda: ["MR", "PI", "PT", "PN"])


StrictField = Literal["department", "equipment_state"]
CharsetRule = Literal["reject", "warn", "ignore"]
_DEFAULT_STRICT: list[StrictField] = ["equipment_state"]


class HisMapping(_Model):
    """Validated HIS mapping.

    `strict`: the fields whose unknown code fails the unit. A department/ward code (PV1-3, FT1-13,
    FT1-16) not listed there keeps the unit with the department unknown and a dead-letter note.
    `strict_codes` (older): `true` makes every code strict, `false` passes unknown codes through
    as the source wrote them (no note); unset, `strict` decides.
    `charset_doubt`: what a message whose bytes do not fit its MSH-18 (or the channel's
    `encoding`) gets: `reject` (AE, dead letter, nothing applied), `warn` (applied, AA with a
    warning and a dead-letter note naming the likeliest charset), or `ignore`.
    """

    encoding: Text | None = None
    strict_codes: bool | None = None
    strict: list[StrictField] = Field(default_factory=_DEFAULT_STRICT.copy)
    charset_doubt: CharsetRule = "reject"
    charges: ChargeRules = Field(default_factory=ChargeRules)
    devices: DeviceRules = Field(default_factory=DeviceRules)
    telemetry: TelemetryRules = Field(default_factory=TelemetryRules)
    item_master: ItemMasterRules = Field(default_factory=ItemMasterRules)
    patient: PatientRules = Field(default_factory=PatientRules)
    departments: list[DepartmentEntry] = Field(default_factory=list)
    locations: dict[str, LocationEntry] = Field(default_factory=dict)
    equipment_states: dict[str, AssetStatus] = Field(default_factory=dict)
    namespaces: dict[Text, Scheme] = Field(default_factory=lambda: dict(DEFAULT_NAMESPACES))
    # Field accounting (adapters/his/accounting.py): what a non-empty field the translator did
    # not read is. `ignore:` adds segments (`ZPI`) or fields (`PV1-19`) to the defaults (MSH,
    # EVN, SFT and the patient segments the hub never keeps); `error` fails the message naming it.
    unclaimed: Literal["warn", "error", "ignore"] = "warn"
    ignore: list[Text] = Field(default_factory=list)

    _version: str = PrivateAttr(default="unversioned")
    _source: str = PrivateAttr(default="<memory>")
    _secret: bytes | None = PrivateAttr(default=None)
    _departments: dict[str, DepartmentEntry] = PrivateAttr(default_factory=dict)
    _locations: dict[str, LocationEntry] = PrivateAttr(default_factory=dict)
    _states: dict[str, AssetStatus] = PrivateAttr(default_factory=dict)
    _places: dict[tuple[str, str], LocationRef | None] = PrivateAttr(default_factory=dict)
    _namespaces: dict[str, str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        for key, entry, _ in self._department_keys():
            self._departments.setdefault(key, entry)  # a clash is reported by problems()
        self._locations = {_code_key(code): entry for code, entry in self.locations.items()}
        self._states = {_code_key(code): status for code, status in self.equipment_states.items()}
        self._namespaces = {_code_key(key): scheme for key, scheme in self.namespaces.items()}

    # -- identity
    @property
    def version(self) -> str:
        """First 12 hex digits of the sha256 of the mapping file's bytes (set by the loader)."""
        version: str = _private(self)["_version"]
        return version

    @property
    def source(self) -> str:
        source: str = _private(self)["_source"]
        return source

    def stamp(self, *, version: str, source: str) -> None:
        """Record where the mapping came from; called once by the loader."""
        self._version = version
        self._source = source

    # -- the secret
    @property
    def patient_secret(self) -> bytes | None:
        secret: bytes | None = _private(self)["_secret"]
        return secret

    def with_secret(self, secret: bytes) -> HisMapping:
        """A copy of this mapping that can compute patient tokens with `secret`."""
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the patient-token secret must be at least {MIN_SECRET_BYTES} bytes")
        copy = self.model_copy()
        copy._secret = bytes(secret)
        return copy

    def require_secret(self) -> bytes:
        secret: bytes | None = _private(self)["_secret"]
        if secret is None:
            raise PatientSecretMissing(
                "this message has a PID segment but the HIS mapping has no patient-token secret: "
                "the hub must call mapping.with_secret(<HUB_SECRET_KEY bytes>) before translating"
            )
        return secret

    # -- code maps
    def department(self, text: str) -> DepartmentEntry | None:
        """The department whose code, name or alias is `text` (compared without spaces/width)."""
        departments: dict[str, DepartmentEntry] = _private(self)["_departments"]
        return departments.get(normalise_label(text)) if text else None

    def namespace_scheme(self, namespace: str) -> str | None:
        """The hub scheme of identifiers in `namespace` (compared without spaces or case), if listed."""
        namespaces: dict[str, str] = _private(self)["_namespaces"]
        return namespaces.get(_code_key(namespace))

    def looks_like_equipment(self, value: str) -> bool:
        return self.devices.looks_like_equipment(value)

    def equipment_state(self, code: str) -> AssetStatus | None:
        states: dict[str, AssetStatus] = _private(self)["_states"]
        return states.get(_code_key(code))

    def is_strict(self, what: StrictField) -> bool:
        """Whether an unknown `what` code fails its unit (else it is kept, unknown, with a note)."""
        return self.strict_codes if self.strict_codes is not None else what in self.strict

    def place(self, code: str, text: str = "") -> LocationRef | None:
        """Where `code` (or, failing that, `text`) points. None: unknown (and `strict_codes` is not false)."""
        places: dict[tuple[str, str], LocationRef | None] = _private(self)["_places"]
        key = (code, text)
        if key not in places:
            if len(places) >= _PLACE_CACHE_SIZE:
                places.clear()  # codes come from the sender: never let them grow memory unbounded
            places[key] = self._find_place(code, text)
        return places[key]

    def _find_place(self, code: str, text: str) -> LocationRef | None:
        locations: dict[str, LocationEntry] = _private(self)["_locations"]
        entry = locations.get(_code_key(code)) if code else None
        if entry is not None:
            department = self.department(entry.department)
            ref = department.ref() if department else DeptRef(code=entry.department)
            return LocationRef(department=ref, location=entry.location)
        known = self.department(code) or self.department(text)
        if known is not None:
            return LocationRef(department=known.ref())
        if self.strict_codes is False:
            return LocationRef(department=DeptRef(code=code or None, name=text or None))
        return None

    # -- validation beyond shapes
    def problems(self) -> list[Problem]:
        return [
            *self._encoding_problems(),
            *self._department_problems(),
            *self._location_problems(),
            *self._namespace_problems(),
            *self._ignore_problems(),
        ]

    def _ignore_problems(self) -> Iterator[Problem]:
        for i, name in enumerate(self.ignore):
            if not _IGNORE_ENTRY.fullmatch(name.strip().upper()):
                yield ("ignore", i), f"{name!r} is neither a segment (ZPI) nor a field (PV1-19)"

    def _namespace_problems(self) -> Iterator[Problem]:
        seen: dict[str, str] = {}
        for key in self.namespaces:
            previous = seen.setdefault(_code_key(key), key)
            if previous != key:
                yield ("namespaces", key), f"{key!r} is the same namespace as {previous!r}"
        for i, pattern in enumerate(self.devices.equipment_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                yield ("devices", "equipment_patterns", i), f"not a regular expression: {exc}"

    def _encoding_problems(self) -> Iterator[Problem]:
        if self.encoding is not None and charset_codec(self.encoding) is None:
            yield ("encoding",), f"{self.encoding!r} is not a character set this hub can decode"

    def _department_problems(self) -> Iterator[Problem]:
        claimed: dict[str, str] = {}
        for key, entry, path in self._department_keys():
            previous = claimed.setdefault(key, entry.code)
            if previous != entry.code:
                yield path, f"{key!r} already names department {previous}"

    def _location_problems(self) -> Iterator[Problem]:
        for code, entry in self.locations.items():
            if self.departments and self.department(entry.department) is None:
                yield (
                    ("locations", code, "department"),
                    f"department {entry.department!r} is not in departments",
                )
        seen: dict[str, str] = {}
        for code in self.locations:
            previous = seen.setdefault(_code_key(code), code)
            if previous != code:
                yield ("locations", code), f"{code!r} is the same code as {previous!r}"

    def _department_keys(self) -> Iterator[tuple[str, DepartmentEntry, KeyPath]]:
        for i, entry in enumerate(self.departments):
            yield normalise_label(entry.code), entry, ("departments", i, "code")
            yield normalise_label(entry.name), entry, ("departments", i, "name")
            for j, alias in enumerate(entry.aliases):
                yield normalise_label(alias), entry, ("departments", i, "aliases", j)


def _code_key(code: str) -> str:
    return re.sub(r"\s+", "", code).upper()


def load_his_mapping(path: Path) -> HisMapping:
    """Load and validate a HIS mapping; `extends: default` builds on the bundled mapping.yaml."""
    # The shared loader's type variable is bound to FileMapping (tabular exports); it only needs
    # model_validate, problems() and stamp(), which HisMapping provides.
    return load_mapping_file(path, HisMapping, default=DEFAULT_MAPPING)  # type: ignore[type-var]


def default_mapping() -> HisMapping:
    """The bundled mapping, as sites without their own file use it."""
    return load_his_mapping(DEFAULT_MAPPING)
