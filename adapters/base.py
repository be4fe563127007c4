"""What every adapter provides, and what a translation returns.

A translator is a pure function: (raw record, payload bytes, mapping, context) -> Translation.
Same input, same output; no clock, no I/O. Row-level problems are `Failure`s inside the
Translation (the good rows still land); a message that cannot be read at all raises
`MalformedMessage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

# The one "unit failed" type and its location live with the wire records (a dead letter is a
# Failure's wire form); adapters name them from here as they always have.
from schemas.records import Failure, SourceLocation

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from hub.ports import RawRecord
    from schemas._base import SourceSystem
    from schemas.envelope import EventBase

__all__ = [
    "AdapterSpec",
    "Emitted",
    "Failure",
    "FieldAccounting",
    "LoadedMapping",
    "SourceLocation",
    "TranslateContext",
    "Translation",
]


@dataclass(frozen=True, slots=True)
class Emitted:
    """One event a translator produced, with where in the source it came from."""

    event: EventBase
    position: str
    location: SourceLocation


SAMPLES_KEPT = 3  # distinct sample values kept per unclaimed column (for the dry run)


@dataclass(frozen=True, slots=True)
class FieldAccounting:
    """Where every non-empty source field of the translated units went.

    Per source column (or field path): how many non-empty cells a mapped field `claimed`, how
    many sit in columns the mapping declares `ignored`, and how many nothing claimed
    (`unclaimed`). `fields` counts non-empty cells per canonical field, for fill rates over `rows`.
    `samples` holds a few values of each unclaimed column: for the dry run only, never stored
    (an unclaimed column may hold anything, a patient's name included).
    """

    rows: int = 0
    claimed: dict[str, int] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    unclaimed: dict[str, int] = field(default_factory=dict)
    fields: dict[str, int] = field(default_factory=dict)
    samples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def cells(self) -> int:
        return sum(self.claimed.values()) + sum(self.ignored.values()) + sum(self.unclaimed.values())

    @property
    def unclaimed_cells(self) -> int:
        return sum(self.unclaimed.values())

    def merged(self, other: FieldAccounting | None) -> FieldAccounting:
        """The accounting of this and `other` together (chunks of one file)."""
        if other is None:
            return self
        samples = dict(self.samples)
        for column, values in other.samples.items():
            samples[column] = tuple(dict.fromkeys((*samples.get(column, ()), *values)))[:SAMPLES_KEPT]
        return FieldAccounting(
            rows=self.rows + other.rows,
            claimed=_added(self.claimed, other.claimed),
            ignored=_added(self.ignored, other.ignored),
            unclaimed=_added(self.unclaimed, other.unclaimed),
            fields=_added(self.fields, other.fields),
            samples=samples,
        )

    def summary(self) -> dict[str, object]:
        """The stored form (with the raw message's status): counts only, no cell values."""
        return {
            "rows": self.rows,
            "cells": self.cells,
            "claimed": sum(self.claimed.values()),
            "ignored": sum(self.ignored.values()),
            "unclaimed": dict(sorted(self.unclaimed.items())),
        }


def _added(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    return out


@dataclass(frozen=True, slots=True)
class Translation:
    events: tuple[Emitted, ...] = ()
    failures: tuple[Failure, ...] = ()
    skipped: tuple[str, ...] = ()  # units recognised and deliberately ignored (summary rows...)
    units: int = 0  # units seen in the message (rows, segments, entries)
    # Units kept (their events are in `events`) with a field left unknown, e.g. a ward code the
    # mapping does not know: each is recorded as a dead letter for the integrator to fix and retry,
    # but nothing of the unit is held back. A retry that no longer notes it resolves the letter.
    notes: tuple[Failure, ...] = ()
    # Which source fields the units used, the mapping ignored, or nothing claimed (None: the
    # adapter does not account yet).
    accounting: FieldAccounting | None = None

    @classmethod
    def joined(cls, chunks: Sequence[Translation]) -> Translation:
        """One translation of a whole file from the translations of its chunks, in order."""
        if len(chunks) == 1:
            return chunks[0]
        accounting = FieldAccounting()
        for chunk in chunks:
            accounting = accounting.merged(chunk.accounting)
        return cls(
            events=tuple(e for c in chunks for e in c.events),
            failures=tuple(f for c in chunks for f in c.failures),
            skipped=tuple(s for c in chunks for s in c.skipped),
            units=sum(c.units for c in chunks),
            notes=tuple(n for c in chunks for n in c.notes),
            accounting=accounting,
        )


@dataclass(frozen=True, slots=True)
class TranslateContext:
    """Everything a translator may depend on besides the raw message and its mapping."""

    site: str
    tz: ZoneInfo
    adapter_version: str
    mapping_version: str


class LoadedMapping(Protocol):
    """A validated mapping; `version` is a short content hash of the file it came from."""

    @property
    def version(self) -> str: ...


# (raw record, payload, mapping, context, rows per chunk) -> the message's Translation in chunks
ChunkedTranslate = Callable[["RawRecord", bytes, Any, "TranslateContext", int], "Iterator[Translation]"]


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """An adapter as the hub wires it.

    `snapshot_types`: event types this source re-sends whole on every export (a ledger). The hub
    turns a repeated one into nothing, and a changed one into its `…details_corrected` form.
    `atomic`: see the field.
    `translate_chunks`: for sources whose messages are files of many rows, the same translation
    `chunk_rows` rows at a time (the worker diffs and publishes chunk by chunk, so memory does not
    grow with the file); `footprint` estimates the bytes reading a payload holds at its peak, so a
    file over the hub's memory budget is refused before any of it is read.
    """

    system: SourceSystem
    version: str
    default_mapping: Path
    load_mapping: Callable[[Path], Any]
    translate: Callable[[RawRecord, bytes, Any, TranslateContext], Translation]
    snapshot_types: frozenset[str] = field(default_factory=frozenset)
    # For payloads this returns True for (a FHIR transaction Bundle), one failure means nothing
    # of the message is published: all or nothing.
    atomic: Callable[[bytes], bool] | None = None
    translate_chunks: ChunkedTranslate | None = None
    footprint: Callable[[bytes], int] | None = None
