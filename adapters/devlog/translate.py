"""Vendor device logs (CSV/XLSX, Chinese headers) -> `asset.telemetry_recorded`, one per row.

Pure, through the shared tabular loop (header synonyms, summary rows, field accounting). The
device: EUI-64 when the row has a valid one (scheme `eui64`, the same asset PCD-01 messages name),
else the serial (`serial` `<vendor>|<serial>` with the row's or the mapping's vendor, else kept
qualified, see adapters/devlog/mapping.py); neither: the row fails naming both columns. An EUI-64
cell that is not one fails the row rather than guessing. Event ids: uuid5 over the device and the
log time, so an overlapping re-export is the same events.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters._files.loop import CHUNK_ROWS, TabularRun, translate_chunks
from adapters._files.rows import RowReader
from adapters.base import Translation
from adapters.namespaces import eui64, qualified
from schemas._base import Identifier, SourceSystem
from schemas.ids import asset_id_for, event_id_for
from schemas.telemetry import AssetTelemetryRecorded, DeviceCode, TelemetryRecordedPayload

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters._files.sheet import Record
    from adapters.base import TranslateContext
    from adapters.devlog.mapping import DevlogMapping
    from hub.ports import RawRecord


class _Run(TabularRun["DevlogMapping"]):
    system = SourceSystem.DEVLOG
    key_field = "serial"

    def row(self, _kind: str, record: Record, position: str) -> None:
        read = RowReader(self.sheet, record, self.mapping)
        at = read.moment("logged_at", self.ctx.tz, required=True)
        device = self._device(read)
        model = read.text("model")
        kind = read.text("device_type")
        department = read.department("department")
        hours = read.quantity("usage_hours", allow_zero=True)
        cycles = read.quantity("power_on_cycles", allow_zero=True)
        battery = read.quantity("battery_pct", allow_zero=True)
        battery_cycles = read.quantity("battery_cycles", allow_zero=True)
        alarm_count = read.quantity("alarm_count", allow_zero=True)
        alarms = self._codes(read.text("alarm_codes"))
        errors = self._codes(read.text("error_codes"))
        if read.problems or at is None or device is None:
            self.fail(read.problems, record, position)
            return
        device_type = kind or (self.mapping.device_types.get(model) if model else None) or model
        try:
            event = AssetTelemetryRecorded(
                event_id=event_id_for("devlog", f"{device.scheme}:{device.value}", at.isoformat()),
                occurred_at=at,
                recorded_at=self.raw.received_at,
                source=self.source,
                subject=asset_id_for(device),
                payload=TelemetryRecordedPayload(
                    device=device,
                    device_type=device_type,
                    department=department,
                    usage_hours=hours,
                    power_on_cycles=None if cycles is None else int(cycles),
                    battery_capacity_pct=battery,
                    battery_cycles=None if battery_cycles is None else int(battery_cycles),
                    alarms=[DeviceCode(code=c) for c in alarms],
                    alarm_count=None if alarm_count is None else int(alarm_count),
                    error_codes=[DeviceCode(code=c) for c in errors],
                ),
            )
        except ValidationError as exc:
            self.refused(exc, record, position)
            return
        if read.notes:
            self.note(read.notes, record, position)
        self.emit(event, record, position)

    def _device(self, read: RowReader) -> Identifier | None:
        raw_eui = read.text("eui64")
        if raw_eui:
            value = eui64(raw_eui)
            if value is None:
                read.problem(
                    "eui64", "invalid_identifier", f"{read.title('eui64')}: {raw_eui!r} is not an EUI-64"
                )
                return None
            return Identifier(scheme="eui64", value=value)
        serial = read.text("serial")
        if not serial:
            read.problem(
                "serial", "missing_required", "neither an EUI-64 nor a serial number names the device"
            )
            return None
        vendor = read.text("vendor") or self.mapping.vendor
        if vendor:
            return Identifier(scheme="serial", value=f"{vendor}|{serial}")
        return qualified("devlog", serial)

    def _codes(self, text: str | None) -> list[str]:
        if not text:
            return []
        separators = "[" + re.escape(self.mapping.code_separators) + "]+"
        return [c for c in re.split(separators, text) if c]


def translate(raw: RawRecord, payload: bytes, mapping: DevlogMapping, ctx: TranslateContext) -> Translation:
    """Translate one device-log export. Raises MalformedMessage when it cannot be read at all."""
    return Translation.joined(list(translate_in_chunks(raw, payload, mapping, ctx, 0)))


def translate_in_chunks(
    raw: RawRecord,
    payload: bytes,
    mapping: DevlogMapping,
    ctx: TranslateContext,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Translation]:
    return translate_chunks(
        _Run, raw, payload, mapping, ctx, documents={}, default_kind="log", chunk_rows=chunk_rows
    )
