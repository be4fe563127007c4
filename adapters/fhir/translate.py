"""FHIR request body -> canonical events: one resource, or a batch/transaction Bundle's entries.

Pure: a function of the raw record, its bytes, the mapping and the context. The raw record's
metadata may carry `content_type` (the request's Content-Type, with its fhirVersion) and
`fhir_type` (the `{type}` of `POST /fhir/{type}`); without them the format is sniffed and any
resource type is read.

Units and positions: a single resource is one unit at position `resource`; a Bundle's entries
are units at `entry:<i>`. Event ids are uuid5 over (fhir, raw.message_id, `<Type>/<id>:<n>`).
A unit that fails validation or cannot be translated is a Failure whose `location.field` holds
the element path(s), comma-separated. In a batch, the good entries land; in a transaction, one
failed entry rolls the whole Bundle back: no events, and each good entry is listed as skipped
(rolled back), so a retry after a mapping fix lands the whole transaction at once.

What each resource type becomes: Device -> asset.registered; SupplyDelivery -> inventory.received
or inventory.transferred; InventoryReport (R5) -> inventory.adjusted; InventoryItem (R5) ->
inventory.item_defined; Task about a Device -> workorder.*. SupplyRequest and Location are
archived and skipped: catalogue v1 has no event for a request (reorders are derived by the hub)
and departments and locations come from the mapping's code maps, not from FHIR Location.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import Emitted, Failure, FieldAccounting, SourceLocation, Translation
from adapters.fhir.accounting import Reading, account_resource, ignored_names
from adapters.fhir.counts import translate_report
from adapters.fhir.devices import translate_device
from adapters.fhir.issues import Issue
from adapters.fhir.parse import ParsedBundle, read_request
from adapters.fhir.supply import translate_delivery, translate_inventory_item
from adapters.fhir.tasks import translate_task
from adapters.fhir.units import Events, Refuse, Result, Skip, Unit
from adapters.fhir.validate import Invalid, Valid
from adapters.fhir.values import base_url
from schemas._base import SourceSystem
from schemas.envelope import Source

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters.base import TranslateContext
    from adapters.fhir.mapping import FhirMapping
    from adapters.fhir.parse import Entry
    from hub.ports import RawRecord

META_CONTENT_TYPE = "content_type"
META_RESOURCE_TYPE = "fhir_type"
SUPPLY_REQUEST_SKIP = "SupplyRequest archived; no canonical event in catalogue v1"
LOCATION_SKIP = "Location archived; departments and locations come from the mapping's code maps in v1"

_TRANSLATORS: dict[str, Callable[[Unit], Result]] = {
    "Device": translate_device,
    "SupplyDelivery": translate_delivery,
    "InventoryReport": translate_report,
    "InventoryItem": translate_inventory_item,
    "Task": translate_task,
    "SupplyRequest": lambda _unit: Skip(SUPPLY_REQUEST_SKIP),
    "Location": lambda _unit: Skip(LOCATION_SKIP),
}


def translate(raw: RawRecord, payload: bytes, mapping: FhirMapping, ctx: TranslateContext) -> Translation:
    """Translate one FHIR request body. Raises FhirRejected when the body cannot be read at all."""
    parsed = read_request(
        payload,
        raw.metadata.get(META_CONTENT_TYPE),
        mapping,
        expected_type=raw.metadata.get(META_RESOURCE_TYPE) or None,
    )
    source = Source(
        system=SourceSystem.FHIR,
        site=ctx.site,
        message_id=raw.message_id,
        raw_ref=raw.raw_ref,
        adapter_version=ctx.adapter_version,
    )
    builder = _Builder(raw, source, mapping, ctx)
    if isinstance(parsed, ParsedBundle):
        return builder.bundle(parsed)
    builder.unit(parsed, position="resource", key=_key(parsed, None, "-"))
    return builder.translation(units=1)


class _Builder:
    """Collects events, failures and skips unit by unit."""

    def __init__(self, raw: RawRecord, source: Source, mapping: FhirMapping, ctx: TranslateContext) -> None:
        self.raw = raw
        self.source = source
        self.mapping = mapping
        self.ctx = ctx
        self.file = raw.metadata.get("filename") or None
        self.events: list[Emitted] = []
        self.failures: list[Failure] = []
        self.skipped: list[str] = []
        self.siblings: dict[str, Any] = {}
        self.accounting = FieldAccounting()
        self.ignored = ignored_names(mapping)

    def translation(self, *, units: int) -> Translation:
        return Translation(
            events=tuple(self.events),
            failures=tuple(self.failures),
            skipped=tuple(self.skipped),
            units=units,
            accounting=self.accounting,
        )

    def bundle(self, bundle: ParsedBundle) -> Translation:
        seen: dict[str, int] = {}
        # A reference to a resource of the same Bundle (`Device/<id>`) means that resource.
        self.siblings = {
            f"{e.resource.resource_type}/{e.resource.model.id}": e.resource.model
            for e in bundle.entries
            if isinstance(e.resource, Valid) and e.resource.model.id
        }
        for entry in bundle.entries:
            position = f"entry:{entry.index}"
            key = _key(entry.resource, entry, f"entry{entry.index}")
            earlier = seen.setdefault(key, entry.index)
            if earlier != entry.index:
                # Same identity twice would mint the same event ids: FHIR fails it in a transaction too.
                reason = f"{key} already appears at entry:{earlier}; a Bundle may name a resource once"
                self._fail(position, [Issue("invalid", f"Bundle.entry[{entry.index}]", reason)])
                continue
            self.unit(
                entry.resource,
                position=position,
                key=key,
                field=f"Bundle.entry[{entry.index}]",
                base=base_url(entry.full_url),
            )
        if bundle.kind == "transaction" and self.failures:
            self._roll_back(bundle)
        return self.translation(units=len(bundle.entries))

    def unit(
        self,
        resource: Valid | Invalid,
        *,
        position: str,
        key: str,
        field: str | None = None,
        base: str | None = None,
    ) -> None:
        if isinstance(resource, Invalid):
            self._fail(position, list(resource.issues))
            return
        reading = Reading(resource.model)
        unit = Unit(
            resource=reading,
            resource_type=resource.resource_type,
            version=resource.version,
            position=position,
            key=key,
            raw=self.raw,
            source=self.source,
            mapping=self.mapping,
            ctx=self.ctx,
            base_url=base,
            siblings=self.siblings,
        )
        result = _TRANSLATORS[resource.resource_type](unit)
        tally = account_resource(
            resource.resource_type,
            resource.model,
            reading.read,
            self.ignored,
            mapped=not isinstance(result, Skip),
        )
        self.accounting = self.accounting.merged(tally)
        if tally.unclaimed and self.mapping.unclaimed == "error" and not isinstance(result, Refuse):
            names = ", ".join(sorted(tally.unclaimed))
            reason = (
                f"non-empty element(s) nothing claims: {names} (`unclaimed: error`: map them,"
                " or list them under `ignore:`)"
            )
            result = Refuse((Issue("not-supported", next(iter(sorted(tally.unclaimed))), reason),))
        if isinstance(result, Refuse):
            self._fail(position, list(result.issues))
        elif isinstance(result, Skip):
            self.skipped.append(f"{position}: {result.reason}")
        elif isinstance(result, Events):
            where = SourceLocation(file=self.file, field=field or resource.resource_type)
            self.events += [Emitted(event=e, position=position, location=where) for e in result.events]
            self.skipped += [f"{position}: {note}" for note in result.notes]

    def _fail(self, position: str, issues: list[Issue]) -> None:
        errors = [i for i in issues if i.severity in {"fatal", "error"}] or issues
        paths = list(dict.fromkeys(i.path for i in errors if i.path))
        self.failures.append(
            Failure(
                position=position,
                reason="; ".join(i.text() for i in issues),
                code=errors[0].code,
                location=SourceLocation(file=self.file, field=", ".join(paths) or None),
            )
        )

    def _roll_back(self, bundle: ParsedBundle) -> None:
        failed = {f.position for f in self.failures}
        first = self.failures[0].position
        self.events = []
        self.skipped = [
            f"entry:{e.index}: rolled back: the transaction failed at {first}"
            for e in bundle.entries
            if f"entry:{e.index}" not in failed
        ]


def _key(resource: Valid | Invalid, entry: Entry | None, fallback: str) -> str:
    """`<Type>/<id>` of a resource; without an id, the entry's fullUrl, else a position-based name."""
    kind = resource.resource_type
    if isinstance(resource, Valid) and resource.model.id:
        return f"{kind}/{resource.model.id}"
    if entry is not None and entry.full_url:
        return entry.full_url
    return f"{kind}/{fallback}"


__all__ = ["LOCATION_SKIP", "META_CONTENT_TYPE", "META_RESOURCE_TYPE", "SUPPLY_REQUEST_SKIP", "translate"]
