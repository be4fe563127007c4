"""FHIR adapter: REST ingest of Device, SupplyDelivery, SupplyRequest, Task, Location and (R5)
InventoryReport / InventoryItem, alone or in batch/transaction Bundles, in JSON or XML, R5 or R4B.

The HTTP routes live in hub/api; this package gives them pure functions:
`parse_request` (validate at the edge; FhirRejected carries OperationOutcome-ready issues),
`translate` (the translator the hub runs on the archived body), `operation_outcome`,
`bundle_kind`, `entry_outcomes`, `response_bundle`, `transaction_outcome`, `resource_outcome`.
"""

from __future__ import annotations

from adapters.base import AdapterSpec
from adapters.fhir.bundle import (
    EntryOutcome,
    bundle_kind,
    entry_outcomes,
    resource_outcome,
    response_bundle,
    transaction_outcome,
)
from adapters.fhir.errors import FhirRejected
from adapters.fhir.issues import Issue
from adapters.fhir.mapping import DEFAULT_MAPPING, FhirMapping, default_mapping, load_fhir_mapping
from adapters.fhir.outcome import operation_outcome
from adapters.fhir.parse import ParsedBundle, parse_request, read_request
from adapters.fhir.translate import META_CONTENT_TYPE, META_RESOURCE_TYPE, translate
from schemas._base import SourceSystem

VERSION = "fhir/1.0.0"

ADAPTER = AdapterSpec(
    system=SourceSystem.FHIR,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_fhir_mapping,
    translate=translate,
    snapshot_types=frozenset({"asset.registered"}),
)

__all__ = [
    "ADAPTER",
    "META_CONTENT_TYPE",
    "META_RESOURCE_TYPE",
    "VERSION",
    "EntryOutcome",
    "FhirMapping",
    "FhirRejected",
    "Issue",
    "ParsedBundle",
    "bundle_kind",
    "default_mapping",
    "entry_outcomes",
    "load_fhir_mapping",
    "operation_outcome",
    "parse_request",
    "read_request",
    "resource_outcome",
    "response_bundle",
    "transaction_outcome",
    "translate",
]
