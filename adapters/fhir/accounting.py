"""Field accounting for FHIR: per resource, which of its top-level elements the translator read,
which the mapping ignores, and which nothing claimed.

The translator gets the resource behind `Reading`, which notes each element asked for
(`device.serialNumber`, `getattr(device, "modelNumber", None)`); an element is claimed when it
was read, whatever the translator then made of it. Always ignored: `meta` (housekeeping, read
where a translator needs lastUpdated), `text` (the narrative, a human-readable copy of the
rest), `implicitRules`, `language` and a few elements the hub does not keep on purpose (see
DEFAULT_IGNORED); `id` names the unit (it is claimed). The mapping's `ignore:` adds elements,
as `Device.note` (one type) or `note` (any). A resource the hub archives without translating
(SupplyRequest, Location) is read on purpose by nothing: all its elements count as ignored.
Names are `<Type>.<element>`, counted once per resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import SAMPLES_KEPT, FieldAccounting

if TYPE_CHECKING:
    from adapters.fhir.mapping import FhirMapping

# Not noise: what the hub deliberately does not keep. A site's `ignore:` adds to these.
DEFAULT_IGNORED = frozenset({
    "meta", "text", "implicitRules", "language", "resource_type",
    "Task.intent",  # always `order` for a repair request
    "Device.manufactureDate",  # not on the asset card (the HRP ledger carries it)
    "InventoryReport.identifier",  # the stocktake's document number; each count is its own event
    "SupplyDelivery.type",  # medication / device / biologically derived: the item says
    "SupplyDelivery.partOf",  # the restock it belongs to (no canonical link in v1)
})  # fmt: skip


class Reading:
    """A resource model that records which attributes were read (see the module doc)."""

    __slots__ = ("_model", "read")

    def __init__(self, model: Any) -> None:
        self._model = model
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return f"<Reading {type(self._model).__name__}>"


def ignored_names(mapping: FhirMapping) -> frozenset[str]:
    return DEFAULT_IGNORED | {name.strip() for name in mapping.ignore}


def account_resource(
    resource_type: str, model: Any, read: set[str], ignored: frozenset[str], *, mapped: bool
) -> FieldAccounting:
    """The accounting of one resource; `mapped` False for a resource archived untranslated."""
    counts: dict[str, dict[str, int]] = {"claimed": {}, "ignored": {}, "unclaimed": {}}
    samples: dict[str, tuple[str, ...]] = {}
    for attr in sorted(model.model_fields_set):
        element = attr.removesuffix("__ext")  # a primitive's extension goes with its value
        if getattr(model, attr, None) in (None, [], {}, ""):
            continue
        name = f"{resource_type}.{element}"
        if mapped and (element in read or element == "id"):
            claim = "claimed"
        elif not mapped or element in ignored or name in ignored:
            claim = "ignored"
        else:
            claim = "unclaimed"
            samples[name] = (_sample(getattr(model, attr)),)[:SAMPLES_KEPT]
        counts[claim][name] = 1
    for claim in ("ignored", "unclaimed"):  # an element claimed via its value or its extension
        for name in [n for n in counts[claim] if n in counts["claimed"]]:
            del counts[claim][name]
            samples.pop(name, None)
    return FieldAccounting(
        rows=1,
        claimed=counts["claimed"],
        ignored=counts["ignored"],
        unclaimed=counts["unclaimed"],
        fields=dict(counts["claimed"]),
        samples=samples,
    )


def _sample(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    dump = getattr(value, "model_dump_json", None)
    text = dump(exclude_none=True) if callable(dump) else str(value)
    return text[:80]
