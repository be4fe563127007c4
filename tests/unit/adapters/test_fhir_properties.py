"""Property tests: whatever arrives, the FHIR adapter answers with a translation or FhirRejected, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.fhir import ADAPTER, FhirRejected, bundle_kind, read_request
from adapters.fhir.versions import model_class
from tests.unit.adapters._fhir import EXAMPLES, SPD_ITEM, context, mapping, raw_record

TYPES = ["Device", "SupplyDelivery", "SupplyRequest", "Task", "InventoryReport", "InventoryItem", "Location",
         "Bundle", "Patient", "Nope"]  # fmt: skip
CODES = st.sampled_from(["active", "completed", "snapshot", "batch", "transaction", "requested", "in-progress",
                         "POST", "PUT", "DELETE", "Device/d1", "#c1", "2024-07-01", "2024-07-01T10:00:00+08:00",
                         SPD_ITEM, "(01)06923456789012(17)260531(10)B1", "", " "])  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    CODES,
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["resourceType", "id", "value", "coding"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


# Small valid resources, so Bundles also carry entries that pass validation and reach the translators.
MINIMAL: list[dict[str, Any]] = [
    {"resourceType": "Bundle", "type": "collection"},
    {"resourceType": "Device", "id": "d1", "identifier": [{"system": "urn:x", "value": "1"}]},
    {"resourceType": "Device", "id": "d1", "serialNumber": "S", "manufacturer": "M"},
    {"resourceType": "Location", "id": "l1"},
    {"resourceType": "Patient", "id": "p1"},
    {"resourceType": "Task", "status": "completed", "intent": "order", "focus": {"reference": "Device/d1"}},
    {"resourceType": "SupplyDelivery", "status": "completed", "suppliedItem": [{"quantity": {"value": 1}}]},
    {"resourceType": "InventoryReport", "status": "active", "countType": "snapshot",
     "reportedDateTime": "2024-07-01", "inventoryListing": [{"item": [{"quantity": {"value": 1},
                                                                        "item": {"concept": {"text": "x"}}}]}]},
]  # fmt: skip


def field_names(kind: str) -> list[str]:
    klass = model_class("R5", kind)
    if klass is None:
        return ["id", "status"]
    return [f.alias or name for name, f in klass.model_fields.items() if name != "fhir_comments"]


@st.composite
def resources(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """Resource-shaped JSON: a known resourceType and some of its real element names with any values."""
    kind = draw(st.sampled_from(TYPES))
    names = field_names(kind)
    body: dict[str, Any] = {"resourceType": kind}
    bundle_shell = kind == "Bundle" and depth == 0
    # A Bundle shell is mostly left sound, so its entries get validated and translated.
    for name in draw(st.lists(st.sampled_from(names), max_size=1 if bundle_shell else 6, unique=True)):
        body[name] = draw(JSON)
    if bundle_shell:
        body["type"] = draw(st.sampled_from(["batch", "transaction", "collection"]))
        body["entry"] = [
            {
                "resource": draw(resources(depth=1) | st.sampled_from(MINIMAL)),
                "request": {"method": draw(st.sampled_from(["POST", "PUT", "GET"])), "url": "x"},
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
    return body


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    """A sound batch or transaction Bundle whose entries are small valid resources or resource-shaped JSON."""
    entries = draw(st.lists(st.sampled_from(MINIMAL) | resources(depth=1), min_size=1, max_size=5))
    return {
        "resourceType": "Bundle",
        "type": draw(st.sampled_from(["batch", "transaction"])),
        "entry": [
            {
                "resource": r,
                "request": {"method": draw(st.sampled_from(["POST", "PUT", "DELETE"])), "url": "x"},
            }
            for r in entries
        ],
    }


def translate_or_reject(payload: bytes, content_type: str | None = None) -> None:
    """Translate; only FhirRejected may escape (the test fails on anything else)."""
    try:
        read_request(payload, content_type, mapping())
        ADAPTER.translate(raw_record(content_type=content_type), payload, mapping(), context())
    except FhirRejected as exc:
        refusal = exc
    else:
        return
    assert refusal.issues
    assert refusal.kind in {"too_large", "unsupported_format", "unsupported_type", "invalid"}


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestNeverCrashes:
    @FAST
    @given(JSON)
    def test_arbitrary_json(self, value: Any) -> None:
        """Any JSON document is translated or refused with FhirRejected."""
        translate_or_reject(json.dumps(value).encode())

    @FAST
    @given(resources())
    def test_resource_shaped_json(self, value: dict[str, Any]) -> None:
        """JSON with real resource types and element names but any values is translated or refused."""
        translate_or_reject(json.dumps(value, ensure_ascii=False).encode())

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bundles())
    def test_bundles(self, value: dict[str, Any]) -> None:
        """Batch and transaction Bundles of any entries are translated entry by entry, or refused."""
        translate_or_reject(json.dumps(value, ensure_ascii=False).encode())

    @FAST
    @given(st.binary(max_size=200), st.sampled_from([None, "application/fhir+json", "application/fhir+xml"]))
    def test_arbitrary_bytes(self, payload: bytes, content_type: str | None) -> None:
        """Any bytes, as JSON, XML or sniffed, are translated or refused."""
        translate_or_reject(payload, content_type)

    @FAST
    @given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
    def test_bundle_kind(self, payload: bytes) -> None:
        """bundle_kind answers batch, transaction or None for any body, never raises."""
        assert bundle_kind(payload) in {"batch", "transaction", None}
        assert bundle_kind(payload, "application/fhir+xml") in {"batch", "transaction", None}

    @FAST
    @given(st.text(max_size=60))
    def test_content_types(self, content_type: str) -> None:
        """Any Content-Type header is accepted or refused with FhirRejected."""
        translate_or_reject(b'{"resourceType": "Location", "id": "l"}', content_type)

    @FAST
    @given(st.sampled_from(TYPES), st.lists(st.tuples(st.sampled_from(
        ["id", "status", "identifier", "value", "system", "udiCarrier", "carrierHRF", "suppliedItem", "quantity",
         "contained", "text", "div", "extension", "focus", "reference", "udi", "Device"]),
        st.text(alphabet="ab<>&\"' 1", max_size=6)), max_size=8))  # fmt: skip
    def test_generated_xml(self, kind: str, children: list[tuple[str, str]]) -> None:
        """FHIR XML with arbitrary (nested) elements and attribute values is translated or refused."""
        inner = ""
        for name, value in children:
            quoted = value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            inner = f'<{name} value="{quoted}">{inner}</{name}>'
        xml = f'<{kind} xmlns="http://hl7.org/fhir">{inner}</{kind}>'
        translate_or_reject(xml.encode(), "application/fhir+xml")


class TestDeterminism:
    @settings(max_examples=60, deadline=None)
    @given(resources())
    def test_same_input_same_translation(self, value: dict[str, Any]) -> None:
        """Translating the same body twice gives equal translations (or the same refusal)."""
        payload = json.dumps(value, ensure_ascii=False).encode()
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(ADAPTER.translate(raw_record(), payload, mapping(), context()))
            except FhirRejected as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


def _mutate(value: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _mutate(value[head], rest, replacement, delete)
        return copy
    copy_list = list(value)
    if delete and not rest:
        del copy_list[head]
    else:
        copy_list[head] = _mutate(value[head], rest, replacement, delete)
    return copy_list


SAMPLES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]


@st.composite
def mutated_samples(draw: st.DrawFn) -> dict[str, Any]:
    """A valid sample with a few elements deleted or replaced by arbitrary JSON."""
    value: Any = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        value = _mutate(value, path, draw(JSON), draw(st.booleans()))
    return value


class TestMutatedSamples:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_samples())
    def test_mutations_never_crash(self, value: Any) -> None:
        """Valid samples with elements removed or replaced are translated or refused, never crash."""
        translate_or_reject(json.dumps(value, ensure_ascii=False, default=str).encode())
