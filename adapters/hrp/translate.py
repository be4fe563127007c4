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

A bad row becomes a Failure naming file, line and column; the good rows still land. The loop is
the shared one for tabular exports (adapters/_files/loop.py); this module says what one HRP row
becomes.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters._files.loop import CHUNK_ROWS, TabularRun, translate_chunks, translate_rows
from adapters._files.rows import RowProblem
from adapters.hrp.documents import Built, HrpReader, build
from adapters.hrp.fields import RowAsset, card_number, read_row
from adapters.hrp.mapping import HrpMapping
from schemas._base import Identifier, SourceSystem
from schemas.assets import AssetRegistered, AssetRegisteredPayload
from schemas.ids import asset_id_for, event_id_for

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from uuid import UUID

    from adapters._files.sheet import Record, Sheet
    from adapters.base import TranslateContext, Translation
    from hub.ports import RawRecord


def translate(raw: RawRecord, payload: bytes, mapping: HrpMapping, ctx: TranslateContext) -> Translation:
    """Translate one ledger export. Raises MalformedMessage when the file cannot be read at all."""
    return translate_rows(
        _Run, raw, payload, mapping, ctx, documents=mapping.documents, default_kind="ledger"
    )


def translate_in_chunks(
    raw: RawRecord, payload: bytes, mapping: HrpMapping, ctx: TranslateContext, chunk_rows: int = CHUNK_ROWS
) -> Iterator[Translation]:
    """`translate`, `chunk_rows` rows at a time (the same events, in the same order)."""
    return translate_chunks(
        _Run,
        raw,
        payload,
        mapping,
        ctx,
        documents=mapping.documents,
        default_kind="ledger",
        chunk_rows=chunk_rows,
    )


class _Run(TabularRun[HrpMapping]):
    """One HRP file: the card numbers of the ledger rows seen so far."""

    system = SourceSystem.HRP
    key_field = "card_no"

    def __init__(self, raw: RawRecord, sheet: Sheet, mapping: HrpMapping, ctx: TranslateContext) -> None:
        super().__init__(raw, sheet, mapping, ctx)
        self._first_seen: dict[str, int] = {}

    def excerpt(self, record: Record) -> Mapping[str, str]:
        # HRP exports hold no patient data: the whole row is kept for the person fixing it.
        return record.values

    def row(self, kind: str, record: Record, position: str) -> None:
        if kind != "ledger":
            self._document(kind, record, position)
            return
        card = card_number(self.sheet, record)
        earlier = self._first_seen.setdefault(card, record.line) if card else record.line
        if earlier != record.line:
            title = self.sheet.header.title_of("card_no") or "card_no"
            reason = f"{title} {card!r} repeats the one on line {earlier}"
            self.fail([RowProblem("card_no", "duplicate_key", reason)], record, position)
            return
        outcome = read_row(self.sheet, record, self.mapping)
        if isinstance(outcome, RowAsset):
            self.emit(self._registered(outcome, position), record, position)
            self.note(outcome.notes, record, position)
        else:
            self.fail(outcome, record, position)

    def _registered(self, asset: RowAsset, position: str) -> AssetRegistered:
        acquired = asset.details.acquired_on
        received = self.raw.received_at
        # Business time is the acquisition date, read as midnight at the site, stored in UTC.
        occurred = (
            datetime.combine(acquired, time(), tzinfo=self.ctx.tz).astimezone(UTC) if acquired else received
        )
        return AssetRegistered(
            event_id=event_id_for(SourceSystem.HRP.value, self.raw.message_id, position),
            occurred_at=occurred,
            recorded_at=received,
            source=self.source,
            subject=asset_id_for(Identifier(scheme="hrp.card", value=asset.card_no)),
            payload=AssetRegisteredPayload(identifiers=list(asset.identifiers), details=asset.details),
        )

    def _document(self, kind: str, record: Record, position: str) -> None:
        """The events of one document row, or its Failure (none of its events then)."""
        reader = HrpReader(self.sheet, record, self.mapping)
        card = reader.text("card_no", required=True)
        try:
            built = build(kind, reader, self.ctx.tz)
            if reader.problems or card is None:
                self.fail(reader.problems, record, position)
                return
            subject = asset_id_for(Identifier(scheme="hrp.card", value=card))
            events = [
                self.event_of(b, event_id=_event_id(b, card, self.raw.message_id, position), subject=subject)
                for b in built
            ]
        except ValidationError as exc:
            self.refused(exc, record, position)
            return
        for event in events:
            self.emit(event, record, position)
        self.note(reader.notes, record, position)


def _event_id(built: Built, card: str, message_id: str, position: str) -> UUID:
    """By document when it has a number (the same document in two exports is one event), else by line.

    The document stands where the message id stands; the card tells its lines apart (one 调拨单 or
    contract can name several assets).
    """
    hrp = SourceSystem.HRP.value
    if built.number is not None:
        return event_id_for(hrp, f"doc:{built.kind}:{built.number}", card)
    return event_id_for(hrp, message_id, f"{position}:{built.tag}" if built.tag else position)
