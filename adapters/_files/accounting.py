"""Field accounting for tabular exports: every non-empty cell of a data row is claimed by a mapped
field, declared ignored by the mapping, or unclaimed.

A column is claimed when its header matched a field's synonym; ignored when the mapping lists its
title (or, under a two-row header, its group or sub-title) under `ignore:`; anything else holding
a value is unclaimed, cells right of the last titled column included. The tally is per chunk; the
worker adds the chunks up (FieldAccounting.merged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from adapters._files.header import normalise_label
from adapters.base import SAMPLES_KEPT, FieldAccounting

if TYPE_CHECKING:
    from adapters._files.header import Header
    from adapters._files.mapping import FileMapping
    from adapters._files.sheet import Record

Claim = Literal["claimed", "ignored", "unclaimed"]


def _parts(title: str) -> list[str]:
    return [title, *title.split(" / ")]


class ColumnTally:
    """Counts, per column, the non-empty cells of the data rows seen since the last `take`."""

    def __init__(self, header: Header, mapping: FileMapping) -> None:
        self._ignore = {normalise_label(name) for name in mapping.ignore}
        field_of = {header.titles[i]: field for field, i in header.columns.items()}
        self._field_of = field_of
        self.claims: dict[str, Claim] = {}
        for i, title in enumerate(header.titles):
            labels = [*_parts(title), header.cells[i] if i < len(header.cells) else ""]
            if title in field_of:
                self.claims[title] = "claimed"
            elif any(normalise_label(label) in self._ignore for label in labels if label):
                self.claims[title] = "ignored"
            else:
                self.claims[title] = "unclaimed"
        self._reset()

    def _reset(self) -> None:
        self.rows = 0
        self.counts: dict[Claim, dict[str, int]] = {"claimed": {}, "ignored": {}, "unclaimed": {}}
        self.fields: dict[str, int] = {}
        self.samples: dict[str, list[str]] = {}

    def titled_unclaimed(self) -> list[str]:
        """Header columns with a title that no field claims and the mapping does not ignore."""
        titled = (t for t, claim in self.claims.items() if claim == "unclaimed")
        return [t for t in titled if not t.startswith("(column ")]

    def claim_of(self, title: str) -> Claim:
        claim = self.claims.get(title)
        if claim is None:  # a cell right of the last titled column
            claim = "ignored" if normalise_label(title) in self._ignore else "unclaimed"
            self.claims[title] = claim
        return claim

    def count(self, record: Record) -> list[str]:
        """Tally one data row; returns its unclaimed columns holding a value."""
        self.rows += 1
        unclaimed: list[str] = []
        for title, value in record.values.items():
            text = value.strip()
            if not text:
                continue
            claim = self.claim_of(title)
            bucket = self.counts[claim]
            bucket[title] = bucket.get(title, 0) + 1
            if claim == "claimed":
                name = self._field_of[title]
                self.fields[name] = self.fields.get(name, 0) + 1
            elif claim == "unclaimed":
                unclaimed.append(title)
                kept = self.samples.setdefault(title, [])
                if len(kept) < SAMPLES_KEPT and text not in kept:
                    kept.append(text[:80])
        return unclaimed

    def count_times(self, record: Record, times: int) -> None:
        """Tally `times` rows whose non-empty cells sit where `record`'s do (no unclaimed ones:
        their samples are kept row by row through `count`)."""
        self.rows += times
        for title, value in record.values.items():
            if not value.strip():
                continue
            claim = self.claim_of(title)
            bucket = self.counts[claim]
            bucket[title] = bucket.get(title, 0) + times
            if claim == "claimed":
                name = self._field_of[title]
                self.fields[name] = self.fields.get(name, 0) + times

    def take(self) -> FieldAccounting:
        out = FieldAccounting(
            rows=self.rows,
            claimed=self.counts["claimed"],
            ignored=self.counts["ignored"],
            unclaimed=self.counts["unclaimed"],
            fields=self.fields,
            samples={k: tuple(v) for k, v in self.samples.items()},
        )
        self._reset()
        return out
