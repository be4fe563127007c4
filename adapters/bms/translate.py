"""BMS exports (CSV/XLSX, Chinese headers) and gateway pushes (JSON) -> `facility.meter_read`.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.
A table goes through the shared tabular loop (header synonyms, summary rows, field accounting);
a JSON body `{"readings": [{"meter": .., "at": .., "value" | "usage": .., ...}]}` is read here,
each entry at position `record:<n>`, a failure naming the entry and the key. The Modbus poller
(adapters/bms/modbus.py) posts the same JSON, so all three doors share one translation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from adapters._files.header import normalise_label
from adapters._files.loop import CHUNK_ROWS, TabularRun, translate_chunks
from adapters._files.rows import RowReader, parse_moment
from adapters._files.values import ValueParseError, canonical_decimal, parse_amount
from adapters.base import Failure, FieldAccounting, SourceLocation, Translation
from adapters.bms.blocks import Blocks
from adapters.bms.readings import Reading, build_reading
from adapters.errors import MalformedMessage
from adapters.provenance import source_of
from schemas._base import SourceSystem

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from adapters._files.sheet import Record, Sheet
    from adapters.base import TranslateContext
    from adapters.bms.mapping import BmsMapping
    from hub.ports import RawRecord
    from schemas.envelope import Source
    from schemas.facility import FacilityMeterRead

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


_TIME = re.compile(r"\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(?::\d{2})?")
_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d{1,9})?")
BLOCK_ROWS = 20_000  # rows of an export per chunk at least: blocks of a few hundred readings


@dataclass(frozen=True, slots=True)
class _Shape:
    """What every row of one shape (same cells but time and value) becomes, learnt from the first."""

    slot: int
    quality: tuple[str, ...]
    value_col: int
    record: Record  # the first row, for the field accounting of the others


class _Run(TabularRun["BmsMapping"]):
    """One export. Rows go through the full reader once per shape; the others of that shape take
    the shortcut: their time and value parsed, everything else as the first one gave it."""

    system = SourceSystem.BMS
    key_field = "meter_id"

    def __init__(self, raw: RawRecord, sheet: Sheet, mapping: BmsMapping, ctx: TranslateContext) -> None:
        super().__init__(raw, sheet, mapping, ctx)
        self.blocks = Blocks(self.source, raw.received_at, sheet.filename, raw.sha256)
        columns = sheet.header.columns
        self._at = columns.get("read_at")
        self._numbers = tuple(columns[f] for f in ("value", "usage") if f in columns)
        self._shapes: dict[tuple[str, ...], _Shape] = {}
        self._repeats: dict[tuple[str, ...], int] = {}  # rows per shape since the last take
        self._learning: tuple[int, tuple[str, ...]] | None = None
        self._moments: dict[str, datetime] = {}

    def _shape_of(self, cells: Sequence[str]) -> tuple[str, ...] | None:
        """The row with its time and value cells replaced by their form; None for an odd form."""
        at = self._at
        if at is None or at >= len(cells):
            return None
        text = cells[at]
        # A time already parsed matched the pattern then (a campus' meters share their times).
        if text not in self._moments and not _TIME.fullmatch(text):
            return None
        shape = list(cells)
        shape[at] = "\0t"
        for i in self._numbers:
            if i < len(cells) and (cell := cells[i]):
                if not _NUMBER.fullmatch(cell):
                    return None
                shape[i] = "\0-" if cell[0] == "-" else "\0n"
        return tuple(shape)

    def shortcut(self, line: int, cells: Sequence[str]) -> bool:
        self._learning = None
        shape = self._shape_of(cells)
        if shape is None:
            return False
        known = self._shapes.get(shape)
        if known is None:
            self._learning = (line, shape)  # `row` learns it if the row lands
            return False
        text = cells[self._at]  # type: ignore[index]  # a shape has a time column
        at = self._moments.get(text)
        if at is None:
            try:
                at = parse_moment(text, self.ctx.tz, self.mapping.date_formats)
            except ValueParseError:
                return False  # the full reader names the problem
            self._moments[text] = at
        cell = cells[known.value_col]
        value = Decimal(cell)
        if ("." in cell and cell[-1] == "0") or not value:
            value = canonical_decimal(value)  # the one form parse_amount gives (12.50 -> 12.5)
        self.blocks.add_line(known.slot, at, value, known.quality, line)
        repeats = self._repeats
        repeats[shape] = repeats.get(shape, 0) + 1
        return True

    def take(self, units: int) -> Translation:
        for shape, times in self._repeats.items():
            self.tally.count_times(self._shapes[shape].record, times)
        self._repeats = {}
        self.events = self.blocks.take()
        return super().take(units)

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
        slot = self.blocks.add_event(built, position, record.line)
        self._learn(record, slot, built)

    def _learn(self, record: Record, slot: int, built: FacilityMeterRead) -> None:
        """Remember the shape of a row that landed, unless a cell of it is unclaimed (whose
        samples the field accounting keeps row by row)."""
        if self._learning is None or self._learning[0] != record.line:
            return
        if any(v.strip() and self.tally.claim_of(t) == "unclaimed" for t, v in record.values.items()):
            return
        columns = self.sheet.header.columns
        value_col = columns["value"] if built.payload.kind != "interval" else columns["usage"]
        shape = self._learning[1]
        p = built.payload
        self._shapes[shape] = _Shape(slot, tuple(p.quality), value_col, record)


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
    """`translate`, at least BLOCK_ROWS rows at a time (a JSON push is one chunk).

    A chunk's readings travel as one block per series; chunks of BLOCK_ROWS keep the blocks a few
    hundred readings long on an export that interleaves its meters, and hold a few MB."""
    if _is_json(raw, payload):
        return iter([_translate_json(raw, payload, mapping, ctx)])
    rows = max(chunk_rows, BLOCK_ROWS) if chunk_rows else 0
    return translate_chunks(
        _Run, raw, payload, mapping, ctx, documents={}, default_kind="reading", chunk_rows=rows
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
    blocks = Blocks(source, raw.received_at, filename, raw.sha256)
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
            blocks.add_event(done, position, None)
    if isinstance(doc, dict):
        for key in doc:
            if key not in _ENVELOPE_KEYS:
                unclaimed[key] = unclaimed.get(key, 0) + 1
    accounting = FieldAccounting(rows=len(entries), claimed=claimed, unclaimed=unclaimed, fields=fields)
    return Translation(
        events=tuple(blocks.take()), failures=tuple(failures), units=len(entries), accounting=accounting
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
) -> FacilityMeterRead | Failure:
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
    return built


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
