"""Field accounting for OA records (count only): every non-empty field of a record is claimed by a
name the mapping knows, declared ignored (`ignore:`), or unclaimed.

OA records are JSON/XML objects whose groups are flattened into one record (adapters/oa/records.py),
so a "column" here is a field name as the record carries it. A name is claimed when any kind's
field table, the kind field, a part column or a `nested:` rule knows it; which kind's table a
record is read with is not considered (a count, not a per-kind audit). Nested children are
records of their own and counted as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.base import SAMPLES_KEPT, FieldAccounting
from adapters.oa.fields import label_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adapters.oa.mapping import OaMapping
    from adapters.oa.records import SourceRecord


def known_labels(mapping: OaMapping) -> frozenset[str]:
    """Every normalised field name some rule of the mapping reads."""
    labels: set[str] = set(mapping.kind_labels())
    for kind in mapping.kinds:
        for table in mapping.field_table(kind).values():
            labels.update(table)
    for written in mapping.part_columns.values():
        labels.update(label_of(n) for n in written)
    for rule in mapping.nested:
        labels.update(label_of(n) for n in rule.path)
    return frozenset(labels)


def _of_ignored_kind(record: SourceRecord, mapping: OaMapping) -> bool:
    if record.kind is not None:
        return False
    labels = mapping.kind_labels()
    word = next((v for k, v in record.fields.items() if label_of(k) in labels), None)
    return isinstance(word, str) and mapping.kind_of(word.strip()) == "ignored"


def unclaimed_names(record: SourceRecord, mapping: OaMapping, known: frozenset[str]) -> list[str]:
    """The record's non-empty fields nothing claims (for `unclaimed: error`)."""
    if _of_ignored_kind(record, mapping):
        return []
    ignored_names = {label_of(n) for n in mapping.ignore}
    return [
        name
        for name, value in record.fields.items()
        if (value.strip() if isinstance(value, str) else value)
        and label_of(name) not in known
        and label_of(name) not in ignored_names
    ]


def account(records: Iterable[SourceRecord], mapping: OaMapping) -> FieldAccounting:
    known = known_labels(mapping)
    ignored_names = {label_of(n) for n in mapping.ignore}
    rows = 0
    counts: dict[str, dict[str, int]] = {"claimed": {}, "ignored": {}, "unclaimed": {}}
    samples: dict[str, list[str]] = {}
    for record in records:
        rows += 1
        skipped = _of_ignored_kind(record, mapping)
        for name, value in record.fields.items():
            if not (value.strip() if isinstance(value, str) else value):
                continue
            label = label_of(name)
            if label in known:
                claim = "claimed"
            elif skipped or label in ignored_names:
                claim = "ignored"  # a record of an ignored kind is read on purpose by nothing
            else:
                claim = "unclaimed"
            counts[claim][name] = counts[claim].get(name, 0) + 1
            if claim == "unclaimed" and isinstance(value, str):
                kept = samples.setdefault(name, [])
                if len(kept) < SAMPLES_KEPT and value.strip() not in kept:
                    kept.append(value.strip()[:80])
    return FieldAccounting(
        rows=rows,
        claimed=counts["claimed"],
        ignored=counts["ignored"],
        unclaimed=counts["unclaimed"],
        samples={k: tuple(v) for k, v in samples.items()},
    )
