"""Which kind of document an export (or each of its rows) is: 入库单, 调拨单, 计量证书...

One source system exports several document kinds through the same channel, and sites name their
files and columns their own way. A mapping describes each kind with three optional signs, tried
in this order:

1. a document-type column (单据类型): its word, per row, selects the kind (mixed exports such as
   出入库明细 hold several kinds in one file);
2. the file name, matched against the kind's `file_patterns` (shell patterns, e.g. `*调拨*`);
3. the header: a kind whose `signature` fields all have a column matches; the largest signature
   wins, and among equal ones the kind listed first in the mapping.

A file no sign identifies falls back to the adapter's default kind (the HRP ledger), or is refused
with the columns found and what each kind needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from adapters._files.header import normalise_label
from adapters._files.mapping import Text
from adapters._files.rows import RowProblem
from adapters._files.values import clean_text
from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping

    from adapters._files.mapping import Problem
    from adapters._files.sheet import Record, Sheet

TYPE_FIELD = "document_type"


class DocumentRule(BaseModel):
    """How to recognise one document kind: header signature, type-column words, file names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signature: list[Text] = Field(default_factory=list)
    type_values: list[Text] = Field(default_factory=list)
    file_patterns: list[Text] = Field(default_factory=list)


def document_problems(
    documents: Mapping[str, DocumentRule], *, kinds: Collection[str], fields: Collection[str]
) -> Iterator[Problem]:
    """Mapping errors in `documents`: unknown kinds or fields, a type word claimed by two kinds."""
    claimed: dict[str, str] = {}
    for kind, rule in documents.items():
        if kind not in kinds:
            yield ("documents", kind), f"unknown document kind {kind!r}; known: {', '.join(sorted(kinds))}"
        for i, field in enumerate(rule.signature):
            if field not in fields:
                yield ("documents", kind, "signature", i), f"unknown field {field!r} in the signature"
        for i, word in enumerate(rule.type_values):
            owner = claimed.setdefault(normalise_label(word), kind)
            if owner != kind:
                yield ("documents", kind, "type_values", i), f"{word!r} already selects {owner!r}"


@dataclass(frozen=True, slots=True)
class Recognition:
    """The file's kind (None: no file-level sign) and whether a type column decides per row."""

    kind: str | None
    reason: str
    per_row: bool
    words: Mapping[str, str]  # normalised type-column word -> kind


def recognise(
    sheet: Sheet, documents: Mapping[str, DocumentRule], *, default: str | None = None
) -> Recognition:
    """Decide the file's document kind from its name and header (see the module docstring)."""
    per_row = TYPE_FIELD in sheet.header.columns
    words = {normalise_label(v): kind for kind, rule in documents.items() for v in rule.type_values}
    name = sheet.filename.rsplit("/", 1)[-1]
    for kind, rule in documents.items():
        for pattern in rule.file_patterns:
            if fnmatchcase(name, pattern):
                return Recognition(kind, f"file name matches {pattern!r}", per_row, words)
    present = set(sheet.header.columns)
    best: tuple[int, str] | None = None
    for kind, rule in documents.items():
        size = len(rule.signature)
        if size and present.issuperset(rule.signature) and (best is None or size > best[0]):
            best = (size, kind)
    if best is not None:
        titles = ", ".join(sheet.header.title_of(f) or f for f in documents[best[1]].signature)
        return Recognition(best[1], f"columns {titles}", per_row, words)
    if per_row:
        return Recognition(None, f"column {sheet.header.title_of(TYPE_FIELD)}", per_row, words)
    if default is not None:
        return Recognition(default, "default kind", per_row, words)
    needs = "; ".join(
        f"{kind}: {', '.join(rule.signature)}" for kind, rule in documents.items() if rule.signature
    )
    found = ", ".join(sorted(present))
    raise MalformedMessage(
        f"{sheet.filename}: cannot tell which document this is: no file-name pattern matches and "
        f"the columns ({found}) hold no kind's signature ({needs})"
    )


def row_kind(
    sheet: Sheet, record: Record, documents: Mapping[str, DocumentRule], recognition: Recognition
) -> str | RowProblem:
    """The kind of one row: its type-column word when it has one, else the file's kind."""
    if recognition.per_row:
        word = clean_text(sheet.text(record, TYPE_FIELD))
        if word:
            kind = recognition.words.get(normalise_label(word))
            if kind is not None:
                return kind
            known = "、".join(v for rule in documents.values() for v in rule.type_values)
            title = sheet.header.title_of(TYPE_FIELD) or TYPE_FIELD
            return RowProblem(
                TYPE_FIELD,
                "unknown_document_type",
                f"{title}: {word!r} is not a known document type ({known})",
            )
    if recognition.kind is None:
        title = sheet.header.title_of(TYPE_FIELD) or TYPE_FIELD
        return RowProblem(TYPE_FIELD, "missing_required", f"{title} is empty")
    return recognition.kind
