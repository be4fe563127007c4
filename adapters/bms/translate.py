"""BMS exports (CSV/XLSX, Chinese headers) and gateway pushes (JSON) -> `facility.meter_read`.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.
A table goes through the shared tabular loop (header synonyms, summary rows, field accounting);
a JSON body `{"readings": [{"meter": .., "at": .., "value" | "usage": .., ...}]}` is read here,
each entry at position `record:<n>`, a failure naming the entry and the key. The Modbus poller
(adapters/bms/modbus.py) posts the same JSON, so all three doors share one translation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from adapters._files.header import normalise_label
from adapters._files.loop import CHUNK_ROWS, TabularRun, translate_chunks
from adapters._files.rows import RowReader, parse_moment
from adapters._files.values import ValueParseError, parse_amount
from adapters.base import Emitted, Failure, FieldAccounting, SourceLocation, Translation
from adapters.bms.readings import Reading, build_reading
from adapters.errors import MalformedMessage
from adapters.provenance import source_of
from schemas._base import SourceSystem

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters._files.sheet import Record
    from adapters.base import TranslateContext
    from adapters.bms.mapping import BmsMapping
    from hub.ports import RawRecord
    from schemas.envelope import Source

# Keys of a pushed reading: canonical field -> the JSON key.
JSON_KEYS = {
    "meter_id": "meter",
    "read_at": "at",
    "value": "value",
    "usage": "usage",
    "quantity": "quantity",
    "interval_minutes": "interval_minutes",
    "quality": "quality",
    "building": "building",
    "floor": "floor",
    "zone": "zone",
}
_ENVELOPE_KEYS = frozenset({"readings", "gateway", "sent_at"})


class _Run(TabularRun["BmsMapping"]):
    system = SourceSystem.BMS
    key_field = "meter_id"

    def row(self, _kind: str, record: Record, position: str) -> None:
        read = RowReader(self.sheet, record, self.mapping)
        meter = read.text("meter_id", required=True)
        at = read.moment("read_at", self.ctx.tz, required=True)
        value = read.amount("value")
        usage = read.amount("usage")
        quantity = read.choice("quantity", self.mapping.quantity_table)
        interval = read.quantity("interval_minutes")
        quality = read.choice("quality", self.mapping.quality_table)
        replaced = read.text("replaced")
        if read.problems or meter is None or at is None:
            self.fail(read.problems, record, position)
            return
        flags = [quality] if quality else []
        if replaced and normalise_label(replaced) in {"是", "y", "yes", "1", "换表", "true"}:
            flags.append("replaced")
        reading = Reading(
            meter_id=meter,
            at=at,
            value=value,
            usage=usage,
            quantity=quantity,
            interval_minutes=int(interval) if interval is not None else None,
            quality=flags,
            building=read.text("building"),
            floor=read.text("floor"),
            zone=read.text("zone"),
        )
        try:
            built = build_reading(reading, self.mapping, source=self.source, received_at=self.raw.received_at)
        except ValidationError as exc:
            self.refused(exc, record, position)
            return
        if isinstance(built, list):
            self.fail(built, record, position)
            return
        self.emit(built, record, position)


def _is_json(raw: RawRecord, payload: bytes) -> bool:
    name = (raw.metadata.get("filename") or raw.message_id).lower()
    return name.endswith(".json") or payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def translate(raw: RawRecord, payload: bytes, mapping: BmsMapping, ctx: TranslateContext) -> Translation:
    """Translate one export or push. Raises MalformedMessage when it cannot be read at all."""
    chunks = list(translate_in_chunks(raw, payload, mapping, ctx, 0))
    return Translation.joined(chunks)


def translate_in_chunks(
    raw: RawRecord, payload: bytes, mapping: BmsMapping, ctx: TranslateContext, chunk_rows: int = CHUNK_ROWS
) -> Iterator[Translation]:
    """`translate`, `chunk_rows` rows at a time (a JSON push is one chunk)."""
    if _is_json(raw, payload):
        return iter([_translate_json(raw, payload, mapping, ctx)])
    return translate_chunks(
        _Run, raw, payload, mapping, ctx, documents={}, default_kind="reading", chunk_rows=chunk_rows
    )


def _translate_json(
    raw: RawRecord, payload: bytes, mapping: BmsMapping, ctx: TranslateContext
) -> Translation:
    filename = raw.metadata.get("filename") or raw.message_id
    try:
        doc = json.loads(payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessage(f"{filename}: not a JSON document: {exc}") from exc
    entries = doc.get("readings") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise MalformedMessage(f'{filename}: expected {{"readings": [...]}} or a list of readings')
    source = source_of(SourceSystem.BMS, raw, ctx)
    events: list[Emitted] = []
    failures: list[Failure] = []
    claimed: dict[str, int] = {}
    unclaimed: dict[str, int] = {}
    fields: dict[str, int] = {}
    for n, entry in enumerate(entries, start=1):
        position = f"record:{n}"
        if not isinstance(entry, dict):
            where = SourceLocation(file=filename)
            failures.append(Failure(position=position, reason="a reading must be an object",
                                    code="invalid_entry", location=where))  # fmt: skip
            continue
        _count(entry, claimed, unclaimed, fields)
        done = _entry(entry, position, filename, mapping, ctx, source=source, received_at=raw.received_at)
        if isinstance(done, Failure):
            failures.append(done)
        else:
            events.append(done)
    if isinstance(doc, dict):
        for key in doc:
            if key not in _ENVELOPE_KEYS:
                unclaimed[key] = unclaimed.get(key, 0) + 1
    accounting = FieldAccounting(rows=len(entries), claimed=claimed, unclaimed=unclaimed, fields=fields)
    return Translation(
        events=tuple(events), failures=tuple(failures), units=len(entries), accounting=accounting
    )


def _count(
    entry: dict[str, Any], claimed: dict[str, int], unclaimed: dict[str, int], fields: dict[str, int]
) -> None:
    known = set(JSON_KEYS.values())
    for key, value in entry.items():
        if value in (None, ""):
            continue
        bucket = claimed if key in known else unclaimed
        bucket[key] = bucket.get(key, 0) + 1
        if key in known:
            fields[key] = fields.get(key, 0) + 1


def _entry(
    entry: dict[str, Any],
    position: str,
    filename: str,
    mapping: BmsMapping,
    ctx: TranslateContext,
    *,
    source: Source,
    received_at: datetime,
) -> Emitted | Failure:
    reading, problem = _json_reading(entry, mapping, ctx)
    if reading is None:
        field, code, reason = problem
        return _failure(position, filename, field, code, reason)
    try:
        built = build_reading(reading, mapping, source=source, received_at=received_at)
    except ValidationError as exc:
        error = exc.errors()[0]
        reason = f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
        return _failure(position, filename, "value", "invalid_value", reason)
    if isinstance(built, list):
        first = built[0]
        return _failure(position, filename, first.field, first.code, "; ".join(p.reason for p in built))
    return Emitted(event=built, position=position, location=SourceLocation(file=filename))


def _failure(position: str, filename: str, field: str, code: str, reason: str) -> Failure:
    key = JSON_KEYS.get(field, field)
    return Failure(
        position=position,
        reason=reason,
        code=code,
        location=SourceLocation(file=filename, column=key, field=field),
    )


def _moment(text: str, ctx: TranslateContext) -> datetime:
    """ISO 8601 with an offset (gateways), else a naive time in the site's zone."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return parse_moment(text, ctx.tz)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ctx.tz)
    return parsed.astimezone(UTC)


def _json_reading(
    entry: dict[str, Any], mapping: BmsMapping, ctx: TranslateContext
) -> tuple[Reading | None, tuple[str, str, str]]:
    none = ("", "", "")
    meter = str(entry.get("meter") or "").strip()
    if not meter:
        return None, ("meter_id", "missing_required", "`meter` is missing")
    try:
        at = _moment(str(entry.get("at") or ""), ctx) if entry.get("at") else None
    except ValueParseError as exc:
        return None, ("read_at", "invalid_date", f"`at`: {exc}")
    if at is None:
        return None, ("read_at", "missing_required", "`at` is missing")
    numbers: dict[str, Decimal | None] = {}
    for key in ("value", "usage"):
        raw = entry.get(key)
        try:
            numbers[key] = (
                None
                if raw is None
                else (Decimal(str(raw)) if isinstance(raw, int | float) else parse_amount(str(raw)))
            )
        except (ValueParseError, InvalidOperation):
            return None, (key, "invalid_amount", f"`{key}`: {raw!r} is not a number")
    quantity = None
    if entry.get("quantity"):
        quantity = mapping.quantity_table.get(normalise_label(str(entry["quantity"])))
        if quantity is None:
            return None, ("quantity", "unknown_quantity", f"`quantity`: {entry['quantity']!r} is not known")
    quality = entry.get("quality") or []
    flags = [
        mapping.quality_table.get(normalise_label(str(q)), "suspect")
        for q in (quality if isinstance(quality, list) else [quality])
    ]
    interval = entry.get("interval_minutes")
    return Reading(
        meter_id=meter,
        at=at,
        value=numbers["value"],
        usage=numbers["usage"],
        quantity=quantity,
        interval_minutes=int(interval) if isinstance(interval, int) else None,
        quality=flags,
        building=entry.get("building"),
        floor=entry.get("floor"),
        zone=entry.get("zone"),
    ), none
