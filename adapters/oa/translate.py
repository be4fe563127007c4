"""OA export or webhook body -> work-order and lending events, one per good record.

Pure: a function of the raw record, its bytes, the mapping and the context; no clock, no I/O.

Event ids: a record with its own document number (单据号) gets uuid5 over (oa, the site, the
document number and the event type), so the same document in two exports, or re-posted by the
webhook, is the same event and never a second effect. A record without one is keyed by its
place in this message, as other adapters do. Within one message, a document that repeats
unchanged is skipped; one that repeats with different content is a failure (which to trust is a
person's call). A bad record is a Failure naming file, record, field and reason; the good
records still land. A record kept with a department the mapping does not know (by name, when
`strict_departments` is off) carries a `department_unknown` note at `<position>#<field>`: after
the mapping names it, a retry corrects its event (hub.translation.corrections). A payload that
cannot be read at all raises MalformedMessage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from adapters.base import Emitted, Failure, SourceLocation, TranslateContext, Translation
from adapters.oa.accounting import account, known_labels, unclaimed_names
from adapters.oa.builders import Draft, build
from adapters.oa.export import read_export
from adapters.oa.fields import Problem, RecordView, label_of
from adapters.oa.records import SourceRecord
from adapters.provenance import source_of
from schemas._base import SourceSystem
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from adapters.oa.mapping import KindName, OaMapping
    from adapters.oa.records import FieldValue, Unreadable
    from hub.ports import RawRecord

_EXCERPT_CHARS = 200


def translate(raw: RawRecord, payload: bytes, mapping: OaMapping, ctx: TranslateContext) -> Translation:
    """Translate one OA export (JSON, JSON Lines, XML) or webhook body."""
    filename = raw.metadata.get("filename") or raw.message_id
    records = read_export(
        payload, filename=filename, content_type=raw.metadata.get("content_type"), mapping=mapping
    )
    run = _Run(raw, mapping, ctx, filename)
    units: list[SourceRecord | Unreadable] = [*records.records, *records.broken]
    for unit in sorted(units, key=lambda u: u.index):
        if isinstance(unit, SourceRecord):
            run.record(unit)
        else:
            run.broken(unit)
    return Translation(
        events=tuple(run.events),
        failures=tuple(run.failures),
        skipped=tuple(run.skipped),
        units=len(units),
        notes=tuple(run.notes),
        accounting=account(records.records, mapping),
    )


class _Run:
    """State of one translation: what was emitted, what failed, which documents were seen."""

    def __init__(self, raw: RawRecord, mapping: OaMapping, ctx: TranslateContext, filename: str) -> None:
        self.raw, self.mapping, self.ctx, self.filename = raw, mapping, ctx, filename
        self.source = source_of(SourceSystem.OA, raw, ctx)
        self.events: list[Emitted] = []
        self.failures: list[Failure] = []
        self.notes: list[Failure] = []  # records kept with a department the mapping does not know
        self.skipped: list[str] = []
        self.documents: dict[tuple[str, str], SourceRecord] = {}
        self.known = known_labels(mapping) if mapping.unclaimed == "error" else frozenset()

    def broken(self, unit: Unreadable) -> None:
        self.failures.append(unit.failure)

    def record(self, record: SourceRecord) -> None:
        if self.known and (extra := unclaimed_names(record, self.mapping, self.known)):
            reason = (
                f"field(s) nothing claims: {', '.join(extra)} (`unclaimed: error`: map them under a field's"
                " names, or list them under `ignore:`)"
            )
            self._fail(record, None, Problem(extra[0], extra[0], "unclaimed_column", reason))
            return
        if record.kind is not None:  # a nested record: its mapping rule names the kind
            self._translate(record, cast("KindName", record.kind), record.kind)
            return
        kind_labels = self.mapping.kind_labels()
        kind_key = next((k for k in record.fields if label_of(k) in kind_labels), None)
        kind_value = record.fields.get(kind_key) if kind_key else None
        word = kind_value.strip() if isinstance(kind_value, str) else ""
        names = self.mapping.columns.get("kind", ["kind"])
        if not word:
            reason = f"{kind_key or names[0]} (kind) is missing or empty (looked for {', '.join(names)})"
            self._fail(record, None, Problem("kind", kind_key or names[0], "missing_required", reason))
            return
        kind = self.mapping.kind_of(word)
        if kind == "ignored":
            self.skipped.append(f"{record.position}: {word} (ignored_kinds)")
            return
        if kind is None:
            known = ", ".join(self.mapping.kind_words())
            reason = f"{kind_key} (kind): unknown record kind {word!r}; known: {known}"
            self._fail(record, None, Problem("kind", kind_key, "unknown_kind", reason))
            return
        self._translate(record, kind, word)

    def _translate(self, record: SourceRecord, kind: KindName, word: str) -> None:
        view = RecordView(record, kind, self.mapping, self.ctx.tz)
        try:
            draft = build(view)
            if draft is not None and self._emit(record, draft, view.clean("doc_no"), (kind, word)):
                self._note(record, word, view.notes)
        except ValidationError as exc:
            # The readers check every value first; this is a backstop, so one odd value that a
            # model still refuses fails its record, not the whole export.
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            problem = Problem(where or "record", None, "invalid_value", f"{where}: {error['msg']}")
            self._fail(record, word, problem)
            return
        if draft is None:
            self._fail(record, word, *view.problems)

    def _emit(
        self, record: SourceRecord, draft: Draft, doc_no: str | None, selected: tuple[KindName, str]
    ) -> bool:
        """Emit the record's event; False when it repeats a document (skipped or failed)."""
        kind, word = selected
        if doc_no:
            key = (doc_no, draft.event_type)
            first = self.documents.setdefault(key, record)
            if first is not record:
                if first.fields == record.fields:
                    self.skipped.append(
                        f"{record.position}: repeats record {first.index} (document {doc_no})"
                    )
                    return False
                reason = f"document {doc_no!r} repeats record {first.index} with different content"
                column = next(
                    (k for k in record.fields if label_of(k) in self.mapping.labels(kind, "doc_no")),
                    None,
                )
                self._fail(record, word, Problem("doc_no", column, "duplicate_document", reason))
                return False
        envelope: dict[str, Any] = {
            "event_id": self._event_id(record, draft, doc_no),
            "occurred_at": draft.occurred_at or self.raw.received_at,
            "recorded_at": self.raw.received_at,
            "source": self.source,
            "subject": draft.subject,
            "payload": draft.payload,
        }
        event = draft.event_class(**envelope)
        location = SourceLocation(file=self.filename, line=record.line)
        self.events.append(Emitted(event=event, position=record.position, location=location))
        return True

    def _event_id(self, record: SourceRecord, draft: Draft, doc_no: str | None) -> UUID:
        system = SourceSystem.OA.value
        if doc_no:
            # Not the message id: the same document must get the same id in every export.
            return event_id_for(system, f"site:{self.ctx.site}", f"doc:{doc_no}:{draft.event_type}")
        if "/" in record.position:  # nested: siblings share the parent's index
            return event_id_for(system, self.raw.message_id, f"{record.position}:{draft.event_type}")
        return event_id_for(system, self.raw.message_id, f"record:{record.index}:{draft.event_type}")

    def _note(self, record: SourceRecord, word: str, notes: list[Problem]) -> None:
        """What a record that landed left unknown: one dead letter (kind `note`) per field, at
        `<position>#<field>`, so a retry after the mapping is fixed can correct its event."""
        where = record.position if "/" in record.position else f"record {record.index}"
        for problem in notes:
            self.notes.append(
                Failure(
                    position=f"{record.position}#{problem.field}",
                    reason=f"{where} ({word}): {problem.reason}",
                    code=problem.code,
                    location=SourceLocation(
                        file=self.filename, line=record.line, column=problem.column, field=problem.field
                    ),
                    excerpt=_excerpt(record.fields),
                )
            )

    def _fail(self, record: SourceRecord, word: str | None, *problems: Problem) -> None:
        first = problems[0]
        where = record.position if "/" in record.position else f"record {record.index}"
        what = f"{where} ({word})" if word else where
        self.failures.append(
            Failure(
                position=record.position,
                reason=f"{what}: " + "; ".join(p.reason for p in problems),
                code=first.code,
                location=SourceLocation(
                    file=self.filename, line=record.line, column=first.column, field=first.field
                ),
                excerpt=_excerpt(record.fields),
            )
        )


def _excerpt(fields: Mapping[str, FieldValue]) -> dict[str, str]:
    """The record's text fields for the person fixing it (OA records carry staff, not patient, data)."""
    return {k: v[:_EXCERPT_CHARS] for k, v in fields.items() if isinstance(v, str)}
