"""Identifiers that carry their namespace (HL7 EI: EQU-1, OBX-18, PRT-10) -> the hub's schemes.

An EI is `<entity id>^<namespace id>^<universal id>^<universal id type>`. Which hub scheme a value
belongs to is the site's business, so the mapping's `namespaces:` table says it: its keys are
matched (case-insensitively) against the namespace id, then the universal id (an OID or URI
naming the assigning system), then the universal id type. `ZC2019007^HRP` is the HRP card
ZC2019007 with the default table, so an equipment status naming it lands on the ledger's asset.

- universal id type or namespace `EUI-64` (IEEE device identifier, as IHE PCD devices send it):
  scheme `eui64`, value 16 upper-case hex digits (the universal id when the entity id is empty);
- a namespace the table lists: that scheme, the entity id as the value;
- a namespace the table does not list: scheme `ns`, value `<namespace>|<entity id>`: kept and
  findable, but never merged with another system's equal number;
- no namespace at all: the caller's default scheme (`his.code` for EQU-1 and OBX-18), as before.

OBX-18 is not only used for devices: analysers write reference-range limits or instrument
channel numbers there. It names a device only when it looks like one (see `equipment_in_obx`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.namespaces import EUI64_SCHEME, eui64, in_scheme, qualified
from schemas._base import Identifier

if TYPE_CHECKING:
    from adapters.his.mapping import HisMapping
    from adapters.his.tokenize import Segment

EUI64_LABEL = "EUI-64"
__all__ = ["EntityId", "equipment_in_obx", "eui64", "resolve"]


@dataclass(frozen=True, slots=True)
class EntityId:
    """One EI (or the first components of a CX/CWE used like one) as read from a field."""

    value: str
    namespace: str = ""
    universal_id: str = ""
    universal_type: str = ""

    @classmethod
    def read(cls, segment: Segment, n: int, repetition: int = 0) -> EntityId:
        return cls(*(segment.field(n, c, repetition).strip() for c in (1, 2, 3, 4)))

    @property
    def qualified(self) -> bool:
        return bool(self.namespace or self.universal_id or self.universal_type)


def resolve(mapping: HisMapping, ei: EntityId, default_scheme: str) -> Identifier | None:
    """The hub identifier `ei` names (see the module docstring); None when it names nothing."""
    labels = (ei.namespace.upper(), ei.universal_type.upper())
    if EUI64_LABEL in labels:
        value = eui64(ei.value) or eui64(ei.universal_id)
        if value is not None:
            return Identifier(scheme=EUI64_SCHEME, value=value)
    value = ei.value or (ei.universal_id if ei.universal_type else "")
    if not value:
        return None
    for key in (ei.namespace, ei.universal_id, ei.universal_type):
        scheme = mapping.namespace_scheme(key) if key else None
        if scheme is not None:
            return in_scheme(scheme, value)
    qualifier = ei.namespace or (ei.universal_id if ei.value else "") or ei.universal_type
    if qualifier:
        return qualified(qualifier, value)
    return Identifier(scheme=default_scheme, value=value)


def equipment_in_obx(mapping: HisMapping, ei: EntityId) -> Identifier | None:
    """The device an OBX-18 repetition names, or None when it does not look like equipment.

    Equipment: an EUI-64 (labelled, or a bare value of that shape), a namespace the mapping
    lists, or a value matching one of the mapping's `devices.equipment_patterns`. Never a bare
    small number: `3`, `1`, `5` from an analyser's reference range are not three devices.
    """
    if not ei.value and not ei.universal_id:
        return None
    labels = {ei.namespace.upper(), ei.universal_type.upper()}
    if EUI64_LABEL in labels:
        return resolve(mapping, ei, "his.code")
    known = any(mapping.namespace_scheme(k) for k in (ei.namespace, ei.universal_id, ei.universal_type) if k)
    if known:
        return resolve(mapping, ei, "his.code")
    if not ei.qualified:
        shaped = eui64(ei.value)
        if shaped is not None and not ei.value.isdigit():
            return Identifier(scheme=EUI64_SCHEME, value=shaped)
    if ei.value and mapping.looks_like_equipment(ei.value):
        return resolve(mapping, ei, "his.code")
    return None
