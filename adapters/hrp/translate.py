"""HRP fixed-asset ledger (固定资产台账) -> one `asset.registered` per good row.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.
Event ids are uuid5 over (hrp, message id, `line:<n>`), the subject is minted from the card
number, so translating the same export twice yields identical events. A bad row becomes a
Failure naming file, line and column; the good rows still land. A ledger is a snapshot: the hub
turns a re-exported, unchanged row into nothing and a changed one into `asset.details_corrected`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from adapters._files.sheet import Record, Sheet, read_sheet
from adapters.base import Emitted, Failure, SourceLocation, TranslateContext, Translation
from adapters.hrp.fields import RowAsset, RowProblem, card_number, read_row
from schemas._base import Identifier, SourceSystem
from schemas.assets import AssetRegistered, AssetRegisteredPayload
from schemas.envelope import Source
from schemas.ids import asset_id_for, event_id_for

if TYPE_CHECKING:
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
        units=len(events) + len(failures) + len(skipped),
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
    first = problems[0]
    return Failure(
        position=position,
        reason="; ".join(p.reason for p in problems),
        code=first.code,
        location=SourceLocation(
            file=sheet.filename,
            line=record.line,
            column=sheet.header.title_of(first.field),
            field=first.field,
        ),
        excerpt=dict(record.values),
    )
