"""Helpers shared by the FHIR adapter tests: a raw record, a context, and running the translator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext, Translation
from adapters.fhir import ADAPTER, FhirMapping, default_mapping
from hub.ports import RawRecord

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "fhir"
CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "fhir"
RECEIVED = datetime(2024, 7, 1, 2, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
HRP_CARD = "http://hospital.example.cn/fhir/sid/hrp-card"
SPD_ITEM = "http://hospital.example.cn/fhir/CodeSystem/spd-item"
UDI_SYSTEM = "http://hospital.example.cn/fhir/CodeSystem/udi"
# The sender the helpers' resources name in meta.source: a server-local `Device/dev-1` is theirs.
SENDER = "http://his.example.cn/fhir"

_MAPPING: FhirMapping | None = None


def mapping() -> FhirMapping:
    """The bundled mapping, loaded once per test session (it is immutable)."""
    global _MAPPING  # noqa: PLW0603 - a cache of an immutable value
    if _MAPPING is None:
        _MAPPING = default_mapping()
    return _MAPPING


def raw_record(
    message_id: str = "msg-1", *, content_type: str | None = None, fhir_type: str | None = None
) -> RawRecord:
    metadata = {"filename": f"{message_id}.json"}
    if content_type:
        metadata["content_type"] = content_type
    if fhir_type:
        metadata["fhir_type"] = fhir_type
    return RawRecord(
        raw_ref=f"raw-{message_id}",
        system="fhir",
        site="demo",
        message_id=message_id,
        sha256="0" * 64,
        size=0,
        transport="http",
        received_at=RECEIVED,
        metadata=metadata,
    )


def context(m: FhirMapping | None = None) -> TranslateContext:
    return TranslateContext(
        site="demo", tz=SHANGHAI, adapter_version=ADAPTER.version, mapping_version=(m or mapping()).version
    )


def run(
    body: dict[str, Any] | bytes,
    *,
    message_id: str = "msg-1",
    content_type: str | None = None,
    fhir_type: str | None = None,
    m: FhirMapping | None = None,
) -> Translation:
    payload = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    record = raw_record(message_id, content_type=content_type, fhir_type=fhir_type)
    return ADAPTER.translate(record, payload, m or mapping(), context(m))


def payloads(translation: Translation) -> list[dict[str, Any]]:
    """Each event's payload as JSON-ready dicts (None fields dropped)."""
    return [e.event.payload.model_dump(mode="json", exclude_none=True) for e in translation.events]


def types(translation: Translation) -> list[str]:
    return [e.event.type for e in translation.events]


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def device(**fields: Any) -> dict[str, Any]:
    """A minimal valid R5 Device with an HRP card number, from SENDER, plus `fields`."""
    body: dict[str, Any] = {
        "resourceType": "Device",
        "id": "dev-1",
        "meta": {"source": SENDER},
        "identifier": [{"system": HRP_CARD, "value": "ZC-2021-00043"}],
        "status": "active",
    }
    body.update(fields)
    return body


def delivery(**fields: Any) -> dict[str, Any]:
    """A minimal valid R5 SupplyDelivery of 10 units of SPD item DZ02001, plus `fields`."""
    body: dict[str, Any] = {
        "resourceType": "SupplyDelivery",
        "id": "sd-1",
        "status": "completed",
        "suppliedItem": [
            {
                "quantity": {"value": 10},
                "itemCodeableConcept": {"coding": [{"system": SPD_ITEM, "code": "DZ02001"}]},
            }
        ],
        "occurrenceDateTime": "2024-07-01T10:00:00+08:00",
        "destination": {"reference": "Location/central-store"},
    }
    body.update(fields)
    return body


def task(**fields: Any) -> dict[str, Any]:
    """A minimal valid R5 repair Task about Device/dev-1, from SENDER, plus `fields`."""
    body: dict[str, Any] = {
        "resourceType": "Task",
        "id": "task-1",
        "meta": {"source": SENDER},
        "identifier": [{"value": "BX-1"}],
        "status": "requested",
        "intent": "order",
        "description": "屏幕不亮",
        "focus": {"reference": "Device/dev-1"},
        "authoredOn": "2024-07-01T09:00:00+08:00",
    }
    body.update(fields)
    return body


def bundle(kind: str, *resources: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": "b-1",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": method, "url": r["resourceType"]}} for r in resources
        ],
    }
