"""HRP exports -> asset events: the fixed-asset ledger (固定资产台账) and the asset documents.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.
The export's kind comes from a 单据类型 column, a file-name pattern or the header (see
adapters/_files/documents.py); a file nothing identifies is a ledger. Every row is keyed by its
card number: the subject is minted from it, so a document names the same asset as the ledger.

Ledger rows: one `asset.registered` each, event id uuid5 over (hrp, message id, `line:<n>`). A
ledger is a snapshot: the hub turns a re-exported, unchanged row into nothing and a changed one
into `asset.details_corrected`. Document rows (documents.py): their events are keyed by the
document's own number when it has one (`doc:<kind>:<number>:<card>`), so the same 调拨单 or
certificate in two exports is one event; else by line, like the ledger.

A bad row becomes a Failure naming file, line and column; the good rows still land.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters._files.documents import recognise, row_kind
from adapters._files.rows import RowProblem, row_failure
from adapters._files.sheet import Record, Sheet, read_sheet
from adapters.base import Emitted, Failure, SourceLocation, TranslateContext, Translation
from adapters.hrp.documents import Built, HrpReader, build
from adapters.hrp.fields import RowAsset, card_number, read_row
from schemas._base import Identifier, SourceSystem
from schemas.assets import AssetRegistered, AssetRegisteredPayload
from schemas.envelope import Source
from schemas.ids import asset_id_for, event_id_for

if TYPE_CHECKING:
    from uuid import UUID

    from adapters.hrp.mapping import HrpMapping
    from hub.ports import RawRecord

_SKIP_REASONS = {
    "summary": "summary row",
    "footer": "footer note",
    "repeated_header": "repeated header row",
}


def translate(raw: RawRecord, payload: bytes, mapping: HrpMapping, ctx: TranslateContext) -> Translation:
    """Translate one ledger export. Raises MalformedMessage when the file cannot be read at all."""
    filename = raw.metadata.get("filename") or raw.message_id
    sheet = read_sheet(payload, filename=filename, mapping=mapping)
    recognition = recognise(sheet, mapping.documents, default="ledger")
    source = Source(
        system=SourceSystem.HRP,
        site=ctx.site,
        message_id=raw.message_id,
        raw_ref=raw.raw_ref,
        adapter_version=ctx.adapter_version,
    )
    events: list[Emitted] = []
    failures: list[Failure] = []
    skipped: list[str] = []
    first_seen: dict[str, int] = {}
    for record in sheet.records:
        position = f"line:{record.line}"
        if record.kind != "data":
            skipped.append(f"{position}: {_SKIP_REASONS[record.kind]}")
            continue
        kind = row_kind(sheet, record, mapping.documents, recognition)
        if isinstance(kind, RowProblem):
            failures.append(_failure([kind], sheet, record, position))
            continue
        if kind != "ledger":
            done = _document(
                kind, record, position, sheet=sheet, mapping=mapping, raw=raw, source=source, ctx=ctx
            )
            if isinstance(done, Failure):
                failures.append(done)
            else:
                events.extend(done)
            continue
        card = card_number(sheet, record)
        earlier = first_seen.setdefault(card, record.line) if card else record.line
        outcome: RowAsset | list[RowProblem]
        if earlier != record.line:
            title = sheet.header.title_of("card_no") or "card_no"
            reason = f"{title} {card!r} repeats the one on line {earlier}"
            outcome = [RowProblem("card_no", "duplicate_key", reason)]
        else:
            outcome = read_row(sheet, record, mapping)
        if isinstance(outcome, RowAsset):
            emitted = _emitted(
                outcome, record=record, position=position, raw=raw, source=source, ctx=ctx, filename=filename
            )
            events.append(emitted)
        else:
            failures.append(_failure(outcome, sheet, record, position))
    return Translation(
        events=tuple(events),
        failures=tuple(failures),
        skipped=tuple(skipped),
        units=len(sheet.records),
    )


def _emitted(
    asset: RowAsset,
    *,
    record: Record,
    position: str,
    raw: RawRecord,
    source: Source,
    ctx: TranslateContext,
    filename: str,
) -> Emitted:
    acquired = asset.details.acquired_on
    # Business time is the acquisition date, read as midnight at the site, stored in UTC.
    occurred = (
        datetime.combine(acquired, time(), tzinfo=ctx.tz).astimezone(UTC) if acquired else raw.received_at
    )
    event = AssetRegistered(
        event_id=event_id_for(SourceSystem.HRP.value, raw.message_id, position),
        occurred_at=occurred,
        recorded_at=raw.received_at,
        source=source,
        subject=asset_id_for(Identifier(scheme="hrp.card", value=asset.card_no)),
        payload=AssetRegisteredPayload(identifiers=list(asset.identifiers), details=asset.details),
    )
    return Emitted(event=event, position=position, location=SourceLocation(file=filename, line=record.line))


def _failure(problems: list[RowProblem], sheet: Sheet, record: Record, position: str) -> Failure:
    # HRP exports hold no patient data: the whole row is kept for the person fixing it.
    return row_failure(problems, sheet, record, position, excerpt=record.values)


def _document(
    kind: str,
    record: Record,
    position: str,
    *,
    sheet: Sheet,
    mapping: HrpMapping,
    raw: RawRecord,
    source: Source,
    ctx: TranslateContext,
) -> list[Emitted] | Failure:
    """The events of one document row, or its Failure."""
    reader = HrpReader(sheet, record, mapping)
    card = reader.text("card_no", required=True)
    try:
        built = build(kind, reader, ctx.tz)
        if reader.problems or card is None:
            return _failure(reader.problems, sheet, record, position)
        location = SourceLocation(file=sheet.filename, line=record.line)
        subject = asset_id_for(Identifier(scheme="hrp.card", value=card))
        return [
            Emitted(
                event=b.event(
                    event_id=_event_id(b, card, raw.message_id, position),
                    occurred_at=b.occurred_at or raw.received_at,
                    recorded_at=raw.received_at,
                    source=source,
                    subject=subject,
                    payload=b.payload,
                ),
                position=position,
                location=location,
            )
            for b in built
        ]
    except ValidationError as exc:
        # The builders check what the payloads need; this is the backstop for what they miss,
        # so one odd row is a dead letter, never the whole file.
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or exc.title
        problem = RowProblem("card_no", "invalid_value", f"{where}: {error['msg']}")
        return _failure([problem], sheet, record, position)


def _event_id(built: Built, card: str, message_id: str, position: str) -> UUID:
    """By document when it has a number (the same document in two exports is one event), else by line.

    The document stands where the message id stands; the card tells its lines apart (one 调拨单 or
    contract can name several assets).
    """
    hrp = SourceSystem.HRP.value
    if built.number is not None:
        return event_id_for(hrp, f"doc:{built.kind}:{built.number}", card)
    return event_id_for(hrp, message_id, f"{position}:{built.tag}" if built.tag else position)
