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
    from collections.abc import Iterator
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from hub.ports import RawRecord
    from schemas._base import SourceSystem
    from schemas.envelope import EventBase

__all__ = [
    "AdapterSpec",
    "Emitted",
    "Failure",
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


@dataclass(frozen=True, slots=True)
class Translation:
    events: tuple[Emitted, ...] = ()
    failures: tuple[Failure, ...] = ()
    skipped: tuple[str, ...] = ()  # units recognised and deliberately ignored (summary rows...)
    units: int = 0  # units seen in the message (rows, segments, entries)


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
