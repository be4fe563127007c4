"""SPD exports (CSV or XLSX) -> inventory events, one per good row.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.
The document kind comes from a 单据类型 column, a file-name pattern or the header (see
adapters/_files/documents.py); each row then becomes its kind's event, keyed by the hub item id
minted from the SPD item code. A bad row becomes a Failure naming file, line, column and field;
the good rows still land.

Event ids: uuid5 over (spd, message id, `line:<n>`), like the HRP ledger, except for rows of a
numbered document (入库单号, 配送单号, 计费单号...), which use `doc:<kind>:<number>:<line>` so the
same document exported twice (overlapping daily exports) is one event, not double stock.

Failure excerpts hold only the mapped columns: consumption exports may carry patient columns the
hub never reads, and those must not reach a dead letter. The loop is the shared one for tabular
exports (adapters/_files/loop.py); this module says what one SPD row becomes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from adapters._files.loop import CHUNK_ROWS, TabularRun, translate_chunks, translate_rows
from adapters._files.rows import RowProblem
from adapters._files.values import clean_text
from adapters.spd.documents import Built, build
from adapters.spd.fields import SpdReader
from adapters.spd.mapping import SpdMapping
from schemas._base import SourceSystem
from schemas.ids import event_id_for, item_id_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from uuid import UUID

    from adapters._files.sheet import Record, Sheet
    from adapters.base import TranslateContext, Translation
    from hub.ports import RawRecord

SYSTEM = SourceSystem.SPD.value


def translate(raw: RawRecord, payload: bytes, mapping: SpdMapping, ctx: TranslateContext) -> Translation:
    """Translate one SPD export. Raises MalformedMessage when the file cannot be read at all."""
    return translate_rows(_Run, raw, payload, mapping, ctx, documents=mapping.documents)


def translate_in_chunks(
    raw: RawRecord, payload: bytes, mapping: SpdMapping, ctx: TranslateContext, chunk_rows: int = CHUNK_ROWS
) -> Iterator[Translation]:
    """`translate`, `chunk_rows` rows at a time (the same events, in the same order)."""
    return translate_chunks(
        _Run, raw, payload, mapping, ctx, documents=mapping.documents, chunk_rows=chunk_rows
    )


class _Run(TabularRun[SpdMapping]):
    """One SPD file: the document keys used and the definitions seen so far (excerpts: mapped cells)."""

    system = SourceSystem.SPD
    key_field = "item_code"

    def __init__(self, raw: RawRecord, sheet: Sheet, mapping: SpdMapping, ctx: TranslateContext) -> None:
        super().__init__(raw, sheet, mapping, ctx)
        self._keys: dict[str, int] = {}  # document keys used, for lines a document repeats
        self._first: dict[tuple[str, ...], int] = {}  # definition keys -> first line

    def row(self, kind: str, record: Record, position: str) -> None:
        reader = SpdReader(self.sheet, record, self.mapping)
        try:
            built = build(kind, reader, self.ctx.tz)
            if built is None:
                self.fail(reader.problems, record, position)
                return
            duplicate = self._duplicate(kind, built, record)
            if duplicate is not None:
                self.fail([duplicate], record, position)
                return
            event = self.event_of(
                built,
                event_id=self._event_id(kind, built, position),
                subject=item_id_for(SYSTEM, clean_text(self.sheet.text(record, "item_code"))),
            )
        except ValidationError as exc:
            self.refused(exc, record, position)
            return
        self.emit(event, record, position)
        self.note(reader.notes, record, position)

    def _event_id(self, kind: str, built: Built, position: str) -> UUID:
        if built.number is None:
            return event_id_for(SYSTEM, self.raw.message_id, position)
        # The document stands where the message id stands: the same line of the same document is
        # one event, whichever export (message) carries it.
        document = f"doc:{kind}:{built.number}"
        key = f"{document}\x1f{built.detail}"
        # Two lines of one document about the same thing stay two events: number them in order.
        seen = self._keys[key] = self._keys.get(key, 0) + 1
        return event_id_for(SYSTEM, document, built.detail if seen == 1 else f"{built.detail}#{seen}")

    def _duplicate(self, kind: str, built: Built, record: Record) -> RowProblem | None:
        """A second definition of the same item (or threshold at the same place) in one file."""
        if kind == "item_master":
            key: tuple[str, ...] = (kind, clean_text(self.sheet.text(record, "item_code")))
        elif kind == "threshold":
            code = clean_text(self.sheet.text(record, "item_code"))
            key = (kind, code, built.payload.model_dump_json(include={"location"}))
        else:
            return None
        first = self._first.setdefault(key, record.line)
        if first == record.line:
            return None
        title = self.sheet.header.title_of("item_code") or "item_code"
        what = "item" if kind == "item_master" else "threshold at this place"
        return RowProblem(
            "item_code",
            "duplicate_key",
            f"{title} {key[1]!r}: this {what} is already defined on line {first}",
        )
