"""One OA record as the readers hand it over: where it sits in the file, and its fields, flattened.

JSON and XML exports nest fields in groups (`"基本信息": {...}`, `<处理信息>…</处理信息>`); the
translator looks fields up by name, so a group's fields join the record (the first occurrence of
a name wins). Lists stay lists: they carry parts. Scalars become text exactly as written, numbers
included (JSON numbers are read as Decimal, so `12800.50` never passes through a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from adapters.base import Failure, SourceLocation

Item = str | Mapping[str, str]
FieldValue = str | tuple[Item, ...]
Format = Literal["json", "jsonl", "xml"]

# format(Decimal, "f") writes every digit: `1e999999999` would become a gigabyte of zeros.
_MAX_PLAIN_EXPONENT = 40


class TooDeepError(ValueError):
    """A record nests deeper than the mapping's limits.max_depth."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A record: `index` is its 1-based order in the file, `line` where it starts (when known).

        `position` is stable within the file: `record:<index>`, or `line:<line>` for JSON Lines; a record
    nested in another (mapping `nested:`) adds its element path, `record:3/审批记录[2]`, and shares
    its parent's index so it follows the parent.
    """

    index: int
    line: int | None
    position: str
    fields: Mapping[str, FieldValue]
    kind: str | None = None  # set for a nested record whose mapping rule names its kind


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that cannot be read at all (a JSON Lines line that is not JSON, a bare number).

    The failure is the hub's one "unit failed" type, as the translator reports it; `index` only
    keeps it in file order among the records.
    """

    index: int
    failure: Failure

    @classmethod
    def at(
        cls, index: int, line: int | None, position: str, code: str, reason: str, *, file: str
    ) -> Unreadable:
        location = SourceLocation(file=file, line=line)
        return cls(index, Failure(position=position, reason=reason, code=code, location=location))


@dataclass(frozen=True, slots=True)
class RecordSet:
    """Everything a reader found in one export, in file order."""

    format: Format
    encoding: str
    records: tuple[SourceRecord, ...]
    broken: tuple[Unreadable, ...] = ()


def scalar_text(value: object) -> str:
    """A scalar as text: strings as they are, numbers as written, booleans as true/false."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and abs(exponent) <= _MAX_PLAIN_EXPONENT:
            return format(value, "f")
        return str(value)
    return str(value)


def flatten_record(obj: Mapping[Any, Any], *, max_depth: int) -> dict[str, FieldValue]:
    """The record's fields, nested groups merged in; raises TooDeepError past `max_depth`."""
    out: dict[str, FieldValue] = {}
    _merge(obj, out, 1, max_depth)
    return out


def _merge(obj: Mapping[Any, Any], out: dict[str, FieldValue], depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise TooDeepError(f"nested deeper than {max_depth} levels (limits.max_depth)")
    for key, value in obj.items():
        name = str(key)
        if value is None:
            continue
        if isinstance(value, dict | Mapping):  # dict first: the ABC check is slow
            _merge(value, out, depth + 1, max_depth)
        elif isinstance(value, list | tuple):
            items = tuple(_item(v, depth + 1, max_depth) for v in value if v is not None)
            out.setdefault(name, items)
        else:
            out.setdefault(name, value if type(value) is str else scalar_text(value))


def _item(value: object, depth: int, max_depth: int) -> Item:
    if isinstance(value, Mapping):
        flat: dict[str, FieldValue] = {}
        _merge(value, flat, depth + 1, max_depth)
        # A part's own sub-lists are not something a part field can hold: keep its scalars.
        return {k: v for k, v in flat.items() if isinstance(v, str)}
    if isinstance(value, list | tuple):
        if depth + 1 > max_depth:
            raise TooDeepError(f"nested deeper than {max_depth} levels (limits.max_depth)")
        return "；".join(scalar_text(v) for v in value if v is not None and not isinstance(v, Mapping | list))
    return scalar_text(value)
