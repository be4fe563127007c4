"""What every adapter provides, and what a translation returns.

A translator is a pure function: (raw record, payload bytes, mapping, context) -> Translation.
Same input, same output; no clock, no I/O. Row-level problems are `Failure`s inside the
Translation (the good rows still land); a message that cannot be read at all raises
`MalformedMessage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from hub.ports import RawRecord
    from schemas._base import SourceSystem
    from schemas.envelope import EventBase


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where in the source a value sits: enough for a person to open the file and find it."""

    file: str | None = None
    line: int | None = None
    column: str | None = None
    field: str | None = None
    segment: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.segment:
            parts.append(f"segment {self.segment}")
        if self.column:
            parts.append(f"column {self.column}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts) or "(whole message)"

    def as_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "file": self.file,
                "line": self.line,
                "column": self.column,
                "field": self.field,
                "segment": self.segment,
            }.items()
            if v is not None
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """One unit (row, segment, entry) that could not be translated, and why.

    `position` is stable within the message (e.g. `line:12`) so a retry can tell which unit it is.
    `excerpt` holds the source values of the unit for people fixing a mapping; adapters that can
    carry patient data leave it empty.
    """

    position: str
    reason: str
    code: str
    location: SourceLocation
    excerpt: dict[str, str] | None = None


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


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """An adapter as the hub wires it.

    `snapshot_types`: event types this source re-sends whole on every export (a ledger). The hub
    turns a repeated one into nothing, and a changed one into its `…details_corrected` form.
    `atomic`: see the field.
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
