"""The one translate loop for tabular exports (HRP, SPD): sheet -> document kinds -> rows -> Translation.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.
What every tabular source does the same way lives here: read the sheet, recognise the document
kind (adapters/_files/documents.py), skip summary/footer/repeated-header rows with a reason, turn
a row of an unknown kind into a Failure, emit events with the row's file and line, and turn a
payload model's ValidationError into one row's Failure (never the whole file's). What differs
per source - how a row of a kind becomes events, and which cells a Failure may quote - is a
`TabularRun` subclass: `row()` and `excerpt()`.

A file is translated in chunks (`translate_chunks`): the rows are read as they are translated and
every `chunk_rows` rows the events, failures and skips so far are handed over and forgotten, so a
file of any length holds one chunk of rows in memory (plus what a source keeps per file to find
repeated keys). `translate_rows` is the same loop with the chunks joined: one Translation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

from adapters._files.accounting import ColumnTally
from adapters._files.documents import recognise, row_kind
from adapters._files.mapping import FileMapping
from adapters._files.rows import RowProblem, mapped_cells, row_failure
from adapters._files.sheet import record_of, stream_cells
from adapters.base import Emitted, Failure, SourceLocation, TranslateContext, Translation
from adapters.errors import MalformedMessage
from adapters.provenance import source_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from pydantic import ValidationError

    from adapters._files.documents import DocumentRule
    from adapters._files.sheet import Record, Sheet
    from hub.ports import RawRecord
    from schemas._base import HubModel, SourceSystem
    from schemas.envelope import EventBase

M = TypeVar("M", bound=FileMapping)

CHUNK_ROWS = 2_000  # rows of a file translated, diffed and published together

SKIP_REASONS = {
    "summary": "summary row",
    "footer": "footer note",
    "repeated_header": "repeated header row",
}


class BuiltEvent(Protocol):
    """What a source's row builder returns: the event class, its payload and business time."""

    @property
    def event(self) -> Callable[..., EventBase]: ...
    @property
    def payload(self) -> HubModel: ...
    @property
    def occurred_at(self) -> datetime | None: ...


class TabularRun(ABC, Generic[M]):
    """One file's translation: the events, failures and skips so far, and per-file state of a source.

    `key_field` is the field a row's identity comes from (card_no, item_code): a backstop
    ValidationError is reported against it. `excerpt` defaults to the mapped cells only, so columns
    the hub never reads (a patient's name beside a consumption scan) never reach a dead letter.
    """

    system: ClassVar[SourceSystem]
    key_field: ClassVar[str]

    def __init__(self, raw: RawRecord, sheet: Sheet, mapping: M, ctx: TranslateContext) -> None:
        self.raw, self.sheet, self.mapping, self.ctx = raw, sheet, mapping, ctx
        self.source = source_of(self.system, raw, ctx)
        self.events: list[Emitted] = []
        self.failures: list[Failure] = []
        self.notes: list[Failure] = []  # rows kept with a value the mapping does not know
        self.skipped: list[str] = []
        self.tally = ColumnTally(sheet.header, mapping)

    @abstractmethod
    def row(self, kind: str, record: Record, position: str) -> None:
        """Emit the events of one data row of document kind `kind`, or fail it."""

    def shortcut(self, line: int, cells: Sequence[str]) -> bool:
        """Take a row without building its Record, when the source knows its shape (True: taken).

        A source whose files repeat a few row shapes many times (meter readings) answers from
        what a row of the same shape gave through the full path; the default takes nothing."""
        del line, cells
        return False

    def excerpt(self, record: Record) -> Mapping[str, str]:
        """The cells a Failure of this row may quote."""
        return mapped_cells(self.sheet, record)

    def take(self, units: int) -> Translation:
        """What was emitted since the last take, as the Translation of `units` rows; then forget it."""
        out = Translation(
            events=tuple(self.events),
            failures=tuple(self.failures),
            skipped=tuple(self.skipped),
            units=units,
            notes=tuple(self.notes),
            accounting=self.tally.take(),
        )
        self.events, self.failures, self.skipped, self.notes = [], [], [], []
        return out

    def fail(self, problems: list[RowProblem], record: Record, position: str) -> None:
        self.failures.append(
            row_failure(problems, self.sheet, record, position, excerpt=self.excerpt(record))
        )

    def note(self, notes: Sequence[RowProblem], record: Record, position: str) -> None:
        """Note what a row that landed left unknown: one dead letter (kind `note`) per field, at
        `<position>#<field>`, so a retry after the mapping is fixed can correct the row."""
        for problem in notes:
            at = f"{position}#{problem.field}"
            self.notes.append(row_failure([problem], self.sheet, record, at, excerpt=self.excerpt(record)))

    def emit(self, event: EventBase, record: Record, position: str) -> None:
        location = SourceLocation(file=self.sheet.filename, line=record.line)
        self.events.append(Emitted(event=event, position=position, location=location))

    def event_of(self, built: BuiltEvent, *, event_id: UUID, subject: str) -> EventBase:
        """`built` as its event; business time falls back to when the hub received the file."""
        return built.event(
            event_id=event_id,
            occurred_at=built.occurred_at or self.raw.received_at,
            recorded_at=self.raw.received_at,
            source=self.source,
            subject=subject,
            payload=built.payload,
        )

    def refused(self, exc: ValidationError, record: Record, position: str) -> None:
        """Fail one row whose payload a model refused.

        The readers check what the payloads need; this is the backstop for what they miss, so one
        odd row is a dead letter, never the whole file.
        """
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or exc.title
        self.fail([RowProblem(self.key_field, "invalid_value", f"{where}: {error['msg']}")], record, position)


def translate_rows(
    run_type: Callable[[RawRecord, Sheet, M, TranslateContext], TabularRun[M]],
    raw: RawRecord,
    payload: bytes,
    mapping: M,
    ctx: TranslateContext,
    *,
    documents: Mapping[str, DocumentRule],
    default_kind: str | None = None,
) -> Translation:
    """Translate one export whole. Raises MalformedMessage when the file cannot be read at all.

    `documents` tell the kinds apart; a file no sign identifies is `default_kind`, or refused.
    """
    chunks = list(
        translate_chunks(
            run_type, raw, payload, mapping, ctx, documents=documents, default_kind=default_kind, chunk_rows=0
        )
    )
    return Translation.joined(chunks)


def translate_chunks(
    run_type: Callable[[RawRecord, Sheet, M, TranslateContext], TabularRun[M]],
    raw: RawRecord,
    payload: bytes,
    mapping: M,
    ctx: TranslateContext,
    *,
    documents: Mapping[str, DocumentRule],
    default_kind: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Translation]:
    """Translate one export `chunk_rows` rows at a time (0: all in one), in file order.

    At least one chunk is yielded. MalformedMessage (a file that cannot be read at all) is raised
    before the first chunk: the file is opened, its header found and, for CSV, every row checked
    against the read limits up front, so a refused file never has part of its rows translated.
    With `unclaimed: error`, a header column no field claims and the mapping does not ignore
    refuses the whole file the same way (its dead letter names the columns); a value in a row
    under no titled column fails that row (code `unclaimed_column`).
    Every chunk carries the FieldAccounting of its data rows.
    """
    filename = raw.metadata.get("filename") or raw.message_id
    sheet, rows = stream_cells(payload, filename=filename, mapping=mapping)
    recognition = recognise(sheet, documents, default=default_kind)
    run = run_type(raw, sheet, mapping, ctx)
    strict = mapping.unclaimed == "error"
    if strict and (columns := run.tally.titled_unclaimed()):
        raise MalformedMessage(
            f"{filename}: column(s) no field claims: {', '.join(columns)} (the mapping says "
            "`unclaimed: error`: map them under a field's synonyms, or list them under `ignore:`)"
        )
    units = 0
    for line, cells in rows:
        units += 1
        if run.shortcut(line, cells):
            if units == chunk_rows:
                yield run.take(units)
                units = 0
            continue
        record = record_of(line, cells, sheet.header, mapping)
        position = f"line:{line}"
        if record.kind != "data":
            run.skipped.append(f"{position}: {SKIP_REASONS[record.kind]}")
        elif (extra := run.tally.count(record)) and strict:
            # Cells under no titled column: the header could not have refused them up front.
            reason = f"value(s) under no mapped column: {', '.join(extra)} (`unclaimed: error`)"
            run.fail([RowProblem(run.key_field, "unclaimed_column", reason)], record, position)
        else:
            kind = row_kind(sheet, record, documents, recognition)
            if isinstance(kind, RowProblem):
                run.fail([kind], record, position)
            else:
                run.row(kind, record, position)
        if units == chunk_rows:
            yield run.take(units)
            units = 0
    yield run.take(units)
