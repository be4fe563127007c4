"""FHIR Device (R5 or R4B) -> `asset.registered`.

Identifiers, in the order they are collected: identifiers whose system the mapping's `namespaces`
lists (an HRP card number, an HIS device code...), identifiers of other systems kept qualified
(`ns` = `<system>|<value>`), `serial` = `<manufacturer>|<serial>` (from serialNumber, an
identifier typed SNO, or the UDI's AI 21), `udi` = the carrier in canonical GS1 form (only when it
names one device: a GS1 carrier with a serial, or a HIBCC carrier kept verbatim) and
(device_id_scheme, `<sender>/Device/<id>`) so a Task's focus `Device/<id>` from the same sender
finds it: Device.id is server-local, so it is never kept bare, and without a known sender (entry
fullUrl base, meta.source, the mapping's `sender`) not at all. The subject is minted from the
first identifier in the mapping's `subject_schemes` order (the sender's id last), so a device the
HRP ledger knows lands on the ledger's asset. A GTIN alone names a product, not a device: it is
never an asset identifier. Device.patient (R4B) is never read. An R5 availabilityStatus the
mapping maps also gives `asset.status_changed` (see translate_device).

The ledger-style re-send (a Device PUT again, changed) is the hub's snapshot differ's business:
it turns a changed `asset.registered` into `asset.details_corrected`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.fhir.udi import UdiReading, read_aidc, read_udi
from adapters.fhir.values import (
    as_list,
    base_url,
    codings,
    concept_text,
    identifier_values,
    reference_target,
    text,
)
from adapters.namespaces import in_scheme, qualified, qualify
from schemas._base import Identifier
from schemas.assets import (
    AssetDetails,
    AssetRegistered,
    AssetRegisteredPayload,
    AssetStatus,
    AssetStatusChanged,
    Category,
    StatusChangedPayload,
)
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from adapters.fhir.mapping import FhirMapping
    from adapters.fhir.units import Result, Unit
    from schemas.envelope import EventBase

_SERIAL_TYPE = "SNO"  # v2 identifier type "Serial Number" (http://terminology.hl7.org/CodeSystem/v2-0203)
# Which of a device's names is its name, best first (R5 DeviceName.type, then R4B's).
_NAME_TYPES = ("user-friendly-name", "registered-name", "udi-label-name", "manufacturer-name", "model-name")


def translate_device(unit: Unit) -> Result:
    device = unit.resource
    mapping = unit.mapping
    readings = udi_readings(device)
    identifiers = device_identifiers(device, mapping, readings, unit.sender())
    if not identifiers:
        unit.refuse(
            "required",
            "Device.identifier",
            "the device has nothing the hub can key it by: no identifier with a system, no "
            "serialNumber with a manufacturer, no UDI carrier with a serial, and an id whose sender "
            "is unknown (no fullUrl, no meta.source, no `sender` in the FHIR mapping)",
        )
        return unit.result([])
    place = unit.place(device.location, "Device.location")
    status, status_text, reported = _status(device, mapping)
    details = AssetDetails(
        name=_name(device),
        model=text(getattr(device, "modelNumber", None)),
        manufacturer=text(device.manufacturer),
        serial_number=_serial(device, readings),
        udi=readings[0].key if readings else None,
        category=_category(device, mapping),
        department=place.ref.department if place and place.kind == "department" else None,
        location=place.ref.location if place else None,
        status=status,
        status_text=status_text,
    )
    event = AssetRegistered(
        event_id=unit.event_id(0),
        occurred_at=unit.occurred(),
        recorded_at=unit.raw.received_at,
        source=unit.source,
        subject=asset_id_for(subject_identifier(identifiers, mapping)),
        payload=AssetRegisteredPayload(identifiers=identifiers, details=details),
    )
    events: list[EventBase] = [event]
    if reported and status is not None and status is not AssetStatus.UNKNOWN:
        # An R5 availabilityStatus is a fact about the device now, not a descriptive field: a
        # registration only fills what the ledger left empty, so a damaged report must also be
        # a status change (or a card the ledger says is in use would stay ready). The id covers
        # the status and time: the same report twice is one event, a changed one a new event.
        when = event.occurred_at
        events.append(
            AssetStatusChanged(
                event_id=unit.event_id(f"status/{status.value}/{when.isoformat()}"),
                occurred_at=when,
                recorded_at=unit.raw.received_at,
                source=unit.source,
                subject=event.subject,
                payload=StatusChangedPayload(status=status, status_text=status_text),
            )
        )
    return unit.result(events)


def udi_readings(device: Any) -> list[UdiReading]:
    """Each UDI carrier as read: the HRF form first, else the AIDC, else the DI alone."""
    readings: list[UdiReading] = []
    for carrier in as_list(device.udiCarrier):
        hrf = text(carrier.carrierHRF)
        if hrf:
            readings.append(read_udi(hrf))
        elif carrier.carrierAIDC:
            readings.append(read_aidc(carrier.carrierAIDC))
        elif text(carrier.deviceIdentifier):
            readings.append(read_udi(str(carrier.deviceIdentifier)))
    return readings


def device_identifiers(
    device: Any, mapping: FhirMapping, readings: list[UdiReading], sender: str | None = None
) -> list[Identifier]:
    """Every identifier of the device the hub can link, without repeats, in collection order.

    An identifier whose system the mapping's `namespaces` lists is that scheme's; one with an
    unlisted system is kept qualified by it (`ns`, `<system>|<value>`); Device.id only qualified
    by its `sender` (see `device_name`), never bare.
    """
    found: list[Identifier] = []
    for system, value, _ in identifier_values(device.identifier):
        if not system:
            continue  # no system: nobody says whose number it is (an SNO is read as the serial)
        scheme = mapping.namespace_scheme(system)
        ident = in_scheme(scheme, value) if scheme else qualified(system, value)
        if ident is not None:
            found.append(ident)
    manufacturer = text(device.manufacturer)
    serial = _serial(device, readings)
    if manufacturer and serial:
        found.append(Identifier(scheme="serial", value=f"{manufacturer}|{serial}"))
    found += [Identifier(scheme="udi", value=r.key) for r in readings if r.serial or r.symbology == "hibcc"]
    device_id = text(device.id)
    if device_id and sender:
        found.append(device_name(mapping, sender, device_id))
    return list(dict.fromkeys(found))


def device_name(mapping: FhirMapping, sender: str, device_id: str) -> Identifier:
    """A server-local Device.id as the hub keeps it: `<sender>/Device/<id>` (two senders' `Device/1`
    are two devices)."""
    value = qualify(sender.rstrip("/"), "/Device/", device_id)
    return Identifier(scheme=mapping.device_id_scheme, value=value)


def subject_identifier(identifiers: list[Identifier], mapping: FhirMapping) -> Identifier:
    """The identifier the asset id is minted from: the first in `subject_schemes` order."""
    for scheme in mapping.subject_schemes:
        chosen = next((i for i in identifiers if i.scheme == scheme), None)
        if chosen is not None:
            return chosen
    # A scheme the site left out of subject_schemes still beats the server-local id.
    return next((i for i in identifiers if i.scheme != mapping.device_id_scheme), identifiers[0])


class UnknownSender(Exception):
    """A reference names a Device by its server-local id, and nothing says whose server that is."""


def focus_identifier(
    reference: Any,
    resource: Any,
    mapping: FhirMapping,
    sender: str | None = None,
    siblings: dict[str, Any] | None = None,
) -> Identifier | None:
    """The asset a Reference(Device) names: its identifier (mapped, else qualified by its system),
    a Device of the same Bundle (`siblings`) or a contained one (by that Device's own preferred
    identifier), else `Device/<id>` qualified by the sender (an absolute reference by its base URL).

    Raises UnknownSender for a relative `Device/<id>` when nothing says whose server it is.
    """
    if reference is None:
        return None
    named = _logical(reference.identifier, mapping)
    if named is not None:
        return named
    target = reference_target(reference)
    if target is not None and target[0] == "Device":
        absolute = base_url(text(reference.reference))
        sibling = (siblings or {}).get(f"Device/{target[1]}") if absolute is None else None
        named = _preferred(sibling, mapping, sender)
        if named is not None:
            return named
        owner = absolute or sender
        if owner is None:
            raise UnknownSender(f"Device/{target[1]}")
        return device_name(mapping, owner, target[1])
    ref = text(reference.reference)
    if ref and ref.startswith("#"):
        device = next(
            (c for c in as_list(resource.contained) if c.id == ref[1:] and c.get_resource_type() == "Device"),
            None,
        )
        return _preferred(device, mapping, None)  # a contained id is the container's, no server's
    return None


def _logical(logical: Any, mapping: FhirMapping) -> Identifier | None:
    """A Reference.identifier as the hub names it: mapped by its system, else qualified by it."""
    if logical is None:
        return None
    system, value = text(logical.system), text(logical.value)
    if not (system and value):
        return None
    scheme = mapping.namespace_scheme(system)
    return in_scheme(scheme, value) if scheme else qualified(system, value)


def _preferred(device: Any, mapping: FhirMapping, sender: str | None) -> Identifier | None:
    """The identifier a Device (contained, or in the same Bundle) mints its asset from, if any."""
    if device is None:
        return None
    identifiers = device_identifiers(device, mapping, udi_readings(device), sender)
    return subject_identifier(identifiers, mapping) if identifiers else None


def _serial(device: Any, readings: list[UdiReading]) -> str | None:
    serial = text(device.serialNumber)
    if serial:
        return serial
    for system, value, types in identifier_values(device.identifier):
        if system is None and any(c.code == _SERIAL_TYPE for c in types):
            return value
    return next((r.serial for r in readings if r.serial), None)


def _name(device: Any) -> str | None:
    display = text(getattr(device, "displayName", None))
    if display:
        return display
    names: list[tuple[str | None, str, bool]] = [
        (entry.type, str(entry.value).strip(), bool(entry.display))
        for entry in as_list(getattr(device, "name", None))  # R5 DeviceName
        if text(entry.value)
    ]
    names += [
        (entry.type, str(entry.name).strip(), False)
        for entry in as_list(getattr(device, "deviceName", None))  # R4B DeviceDeviceName
        if text(entry.name)
    ]
    if names:
        shown = [n for n in names if n[2]]
        if shown:
            return shown[0][1]
        rank = {kind: i for i, kind in enumerate(_NAME_TYPES)}
        return min(names, key=lambda n: rank.get(n[0] or "", len(rank)))[1]
    return next((concept_text(t) for t in as_list(device.type) if concept_text(t)), None)


def _status(device: Any, mapping: FhirMapping) -> tuple[AssetStatus | None, str | None, bool]:
    """The status, its source words, and whether an availabilityStatus the mapping knows set it."""
    reported = False
    code = text(device.status)
    status = mapping.device_statuses.get(code) if code else None  # type: ignore[call-overload]
    words = [code] if code else []
    for coding in codings(getattr(device, "availabilityStatus", None)):  # R5 only
        if coding.code:
            words.append(coding.code)
            refined = mapping.availability_statuses.get(coding.code)
            if refined is not None:
                status, reported = refined, True
            break
    if words and status is None:
        status = AssetStatus.UNKNOWN
    return status, "/".join(words) or None, reported


def _category(device: Any, mapping: FhirMapping) -> Category | None:
    wanted = set(mapping.category_systems)
    for concept in as_list(device.type):
        for coding in codings(concept):
            if coding.system in wanted and coding.code:
                return Category(code=coding.code, name=coding.display)
    return None
