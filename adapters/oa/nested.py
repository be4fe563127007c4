"""Records inside records: an approval log or a repair result nested in a request.

OA workflow exports often write a whole work order as one element: the request's fields, then
`<审批记录>` holding one `<审批>` per step, then `<维修结果>` with the completion. Flattened as one
record, only the request would be read and the steps silently lost. The mapping's `nested:` rules
name such children; each child becomes a record of its own (of the rule's kind, or of the kind its
own kind field names), placed right after its parent, with the parent's fields the rule lists in
`inherit` when the child does not carry them itself (the work-order number, the asset).

A child is found only where a rule's name holds an object or a list of objects: a scalar under the
same name stays a field of the parent (`维修结果: 更换电池` is the resolution text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters._files.header import normalise_label
from adapters.oa.records import SourceRecord, TooDeepError, Unreadable, flatten_record

if TYPE_CHECKING:
    from adapters.oa.mapping import NestedRule, OaMapping
    from adapters.oa.records import FieldValue


@dataclass(frozen=True, slots=True)
class Child:
    """One nested unit as read: the name it sat under, its place among siblings, its line, its value."""

    name: str
    number: int
    line: int | None
    value: Any


def rules_by_label(mapping: OaMapping) -> dict[str, NestedRule]:
    return {normalise_label(name): rule for rule in mapping.nested for name in rule.path}


def split(
    obj: Mapping[str, Any], rules: Mapping[str, NestedRule], line: int | None
) -> tuple[dict[str, Any], list[Child]]:
    """`obj` without its nested children (looked for in its groups too), and the children in order."""
    children: list[Child] = []
    return _split(obj, rules, line, children), children


def _split(
    obj: Mapping[str, Any], rules: Mapping[str, NestedRule], line: int | None, out: list[Child]
) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in obj.items():
        name = str(key)
        if normalise_label(name) in rules and _holds_records(value):
            items = value if isinstance(value, list | tuple) else [value]
            out.extend(Child(name, n, line, item) for n, item in enumerate(items, start=1))
        elif isinstance(value, dict):
            kept[name] = _split(value, rules, line, out)
        else:
            kept[name] = value
    return kept


def _holds_records(value: object) -> bool:
    if isinstance(value, Mapping):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def child_records(
    parent: SourceRecord,
    children: list[Child],
    mapping: OaMapping,
    rules: Mapping[str, NestedRule],
    filename: str,
) -> tuple[list[SourceRecord], list[Unreadable]]:
    """Each child as a record after `parent`: its own fields, then what its rule inherits."""
    records: list[SourceRecord] = []
    broken: list[Unreadable] = []
    for child in children:
        rule = rules[normalise_label(child.name)]
        position = f"{parent.position}/{child.name}[{child.number}]"
        line = child.line if child.line is not None else parent.line
        try:
            fields = flatten_record(child.value, max_depth=mapping.limits.max_depth)
        except TooDeepError as exc:
            reason = f"{position}: {exc}"
            broken.append(Unreadable.at(parent.index, line, position, "too_deep", reason, file=filename))
            continue
        _inherit(fields, parent.fields, rule.inherit, mapping)
        records.append(SourceRecord(parent.index, line, position, fields, kind=rule.kind))
    return records, broken


def _inherit(
    fields: dict[str, FieldValue], parent: Mapping[str, FieldValue], wanted: list[str], mapping: OaMapping
) -> None:
    present = {normalise_label(k) for k in fields}
    for field in wanted:
        labels = {normalise_label(n) for n in mapping.columns.get(field, [])}
        if present & labels:
            continue  # the child says it itself
        for key, value in parent.items():
            if normalise_label(key) in labels:
                fields.setdefault(key, value)
                break
