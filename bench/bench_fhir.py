"""FHIR translation throughput: parse + validate (fhir.resources) + translate, resources per second."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import TranslateContext
from adapters.fhir import ADAPTER, default_mapping
from hub.ports import RawRecord

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "fhir"
DURATION_S = 2.0


def _bundle_of(count: int) -> bytes:
    """A batch Bundle of `count` entries: Devices, deliveries and Tasks in turn, each with its own id."""
    device = json.loads((EXAMPLES / "device-ventilator-icu.json").read_text(encoding="utf-8"))
    delivery = json.loads((EXAMPLES / "supplydelivery-central-store.json").read_text(encoding="utf-8"))
    task = json.loads((EXAMPLES / "task-repair-in-progress.json").read_text(encoding="utf-8"))
    entries = []
    for i in range(count):
        resource = dict((device, delivery, task)[i % 3])
        resource["id"] = f"{resource['id']}-{i}"
        entries.append({"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
    return json.dumps(
        {"resourceType": "Bundle", "type": "batch", "entry": entries}, ensure_ascii=False
    ).encode()


def _measure(payload: bytes) -> tuple[float, int, int]:
    mapping = default_mapping()
    raw = RawRecord(
        raw_ref="bench",
        system="fhir",
        site="bench",
        message_id="bench",
        sha256="0" * 64,
        size=len(payload),
        transport="http",
        received_at=datetime(2024, 7, 1, tzinfo=UTC),
        metadata={"content_type": "application/fhir+json"},
    )
    ctx = TranslateContext(
        site="bench",
        tz=ZoneInfo("Asia/Shanghai"),
        adapter_version=ADAPTER.version,
        mapping_version=mapping.version,
    )
    resources = runs = 0
    started = time.perf_counter()
    while time.perf_counter() - started < DURATION_S:
        result = ADAPTER.translate(raw, payload, mapping, ctx)
        resources += result.units
        runs += 1
    return resources / (time.perf_counter() - started), runs, len(result.events)


async def run(report) -> None:
    cases = [
        ("Device (R5 JSON, GS1 UDI)", (EXAMPLES / "device-ventilator-icu.json").read_bytes()),
        (
            "SupplyDelivery (R5 JSON, 2 items, contained)",
            (EXAMPLES / "supplydelivery-central-store.json").read_bytes(),
        ),
        ("batch Bundle of 50 (Device/SupplyDelivery/Task)", _bundle_of(50)),
    ]
    for name, payload in cases:
        rate, runs, events = _measure(payload)
        report.add(
            "fhir", f"resources translated: {name}", rate, "res/s", note=f"{runs} runs, {events} events/run"
        )
