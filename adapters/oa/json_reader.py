"""Reading an OA JSON export: a list of records, an object holding the list, one record, or JSON Lines.

The document is walked with the standard library's decoder one element at a time, so each record
keeps the line it starts on (a person fixing record 37 wants to open the file there). Numbers are
read as Decimal, never float. JSON Lines (one record per line) is read line by line: a line that
is not JSON is one broken record, and the other lines still land. Anything else that cannot be
read raises MalformedMessage naming the file, line and column.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters._files.encoding import decode_export
from adapters._files.header import normalise_label
from adapters.errors import MalformedMessage
from adapters.oa.nested import child_records, rules_by_label, split
from adapters.oa.records import Format, RecordSet, SourceRecord, TooDeepError, Unreadable, flatten_record

if TYPE_CHECKING:
    from adapters.oa.mapping import OaMapping

# NaN/Infinity stay text (the field then fails as "not a number"), never a float.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=str)
_WS = re.compile(r"[ \t\n\r]*")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", Decimal: "a number", bool: "a boolean"}


class _TrailingDataError(Exception):
    """More text after the first JSON value (at `pos`): the file may be JSON Lines."""

    def __init__(self, pos: int) -> None:
        self.pos = pos


def read_json(data: bytes, *, filename: str, mapping: OaMapping, lines: bool = False) -> RecordSet:
    """Read a JSON or JSON Lines export (`lines`, or detected when a second value follows the first)."""
    decoded = decode_export(data, filename=filename, encoding=mapping.encoding)
    text = decoded.text
    if not text.strip():
        raise MalformedMessage(f"{filename}: empty JSON export")
    try:
        if lines:
            return _read_lines(text, filename, mapping, decoded.encoding)
        try:
            items = _Walker(text, filename, mapping).document()
        except _TrailingDataError as exc:
            if not _first_line_is_object(text):
                where = json.JSONDecodeError("extra data", text, exc.pos)
                raise MalformedMessage(
                    f"{filename}: extra data after the JSON value at line {where.lineno}, "
                    f"column {where.colno} (JSON Lines needs one record object per line)"
                ) from None
            return _read_lines(text, filename, mapping, decoded.encoding)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(
            f"{filename}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise MalformedMessage(f"{filename}: JSON nested too deeply to read") from exc
    line_of = _LineCounter(text)
    numbered = [(index, line_of(offset), obj) for index, (offset, obj) in enumerate(items, start=1)]
    return _record_set(numbered, "json", decoded.encoding, mapping, filename)


class _Walker:
    """Walks the top level by hand and decodes each record with the C decoder, keeping offsets."""

    def __init__(self, text: str, filename: str, mapping: OaMapping) -> None:
        self.text, self.filename, self.mapping = text, filename, mapping
        self.pos = 0

    def document(self) -> list[tuple[int, Any]]:
        self._ws()
        start = self.pos
        head = self.text[start : start + 1]
        if head == "[":
            items = self._array()
            self._end()
            return items
        if head == "{":
            whole, lists = self._object()
            self._end()  # JSON Lines is told apart before the object is judged as an export
            return self._pick(whole, lists, start)
        value = self._value()  # raises the decoder's own message for non-JSON text
        raise MalformedMessage(
            f"{self.filename}: a JSON export must be a list or an object, not {_type_name(value)}"
        )

    def _end(self) -> None:
        self._ws()
        if self.pos != len(self.text):
            raise _TrailingDataError(self.pos)

    def _object(self) -> tuple[dict[str, Any], dict[str, list[tuple[int, Any]]]]:
        """The top-level object's members, with offsets kept for lists under a records key."""
        wanted = {normalise_label(k): k for k in self.mapping.records.json_keys}
        whole: dict[str, Any] = {}
        lists: dict[str, list[tuple[int, Any]]] = {}
        self.pos += 1
        self._ws()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return whole, lists
        while True:
            self._ws()
            key = self._value()
            if not isinstance(key, str):
                self._fail("object keys must be strings")
            self._ws()
            self._expect(":")
            self._ws()
            if normalise_label(key) in wanted and self.text.startswith("[", self.pos):
                lists[key] = self._array()
                whole[key] = [obj for _, obj in lists[key]]
            else:
                whole[key] = self._value()
            self._ws()
            if self._expect(",}") == "}":
                return whole, lists

    def _pick(
        self, whole: dict[str, Any], lists: dict[str, list[tuple[int, Any]]], start: int
    ) -> list[tuple[int, Any]]:
        """Records under one of the mapping's list keys, or the object itself as one record."""
        by_label = {normalise_label(k): k for k in whole}
        for name in self.mapping.records.json_keys:
            key = by_label.get(normalise_label(name))
            if key is None:
                continue
            if key not in lists:
                raise MalformedMessage(
                    f"{self.filename}: {key!r} should hold the list of records, "
                    f"but holds {_type_name(whole[key])}"
                )
            return lists[key]
        if set(by_label) & set(self.mapping.kind_labels()):
            return [(start, whole)]  # one record on its own, as the webhook posts it
        keys = ", ".join(self.mapping.records.json_keys)
        raise MalformedMessage(
            f"{self.filename}: no records: the object has no list under {keys} (records.json_keys) "
            f"and no record-kind field of its own"
        )

    def _array(self) -> list[tuple[int, Any]]:
        items: list[tuple[int, Any]] = []
        limit = self.mapping.limits.max_records
        self.pos += 1
        self._ws()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            self._ws()
            offset = self.pos
            items.append((offset, self._value()))
            if len(items) > limit:
                raise MalformedMessage(f"{self.filename}: more than {limit:,} records (limits.max_records)")
            self._ws()
            if self._expect(",]") == "]":
                return items

    def _value(self) -> Any:
        value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        return value

    def _ws(self) -> None:
        match = _WS.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def _expect(self, chars: str) -> str:
        found = self.text[self.pos : self.pos + 1]
        if not found or found not in chars:
            self._fail(f"expected {' or '.join(repr(c) for c in chars)}")
        self.pos += 1
        return found

    def _fail(self, message: str) -> None:
        raise json.JSONDecodeError(message, self.text, self.pos)


def _first_line_is_object(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return isinstance(_DECODER.decode(first), dict)
    except (ValueError, RecursionError):
        return False


def _read_lines(text: str, filename: str, mapping: OaMapping, encoding: str) -> RecordSet:
    items: list[tuple[int, int, Any]] = []
    broken: list[Unreadable] = []
    limit = mapping.limits.max_records
    index = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        index += 1
        if index > limit:
            raise MalformedMessage(f"{filename}: more than {limit:,} records (limits.max_records)")
        try:
            items.append((index, number, _DECODER.decode(line)))
        except json.JSONDecodeError as exc:
            reason = f"line {number} is not JSON (column {exc.colno}: {exc.msg})"
            broken.append(
                Unreadable.at(index, number, f"line:{number}", "unreadable_record", reason, file=filename)
            )
    result = _record_set(items, "jsonl", encoding, mapping, filename)
    merged = sorted([*result.broken, *broken], key=lambda b: b.index)
    return RecordSet("jsonl", encoding, result.records, tuple(merged))


def _record_set(
    items: list[tuple[int, int, Any]], fmt: Format, encoding: str, mapping: OaMapping, filename: str
) -> RecordSet:
    """Flatten (index, line, value) triples into records; what is not an object is a broken record."""
    records: list[SourceRecord] = []
    broken: list[Unreadable] = []
    rules = rules_by_label(mapping)
    for index, line, obj in items:
        position = f"line:{line}" if fmt == "jsonl" else f"record:{index}"
        if not isinstance(obj, dict):
            reason = f"record {index} is {_type_name(obj)}, not an object"
            broken.append(Unreadable.at(index, line, position, "not_an_object", reason, file=filename))
            continue
        own, children = split(obj, rules, line) if rules else (obj, [])
        try:
            fields = flatten_record(own, max_depth=mapping.limits.max_depth)
        except TooDeepError as exc:
            reason = f"record {index}: {exc}"
            broken.append(Unreadable.at(index, line, position, "too_deep", reason, file=filename))
            continue
        parent = SourceRecord(index=index, line=line, position=position, fields=fields)
        records.append(parent)
        if children:
            more, bad = child_records(parent, children, mapping, rules, filename)
            records.extend(more)
            broken.extend(bad)
    return RecordSet(fmt, encoding, tuple(records), tuple(broken))


class _LineCounter:
    """Line number of increasing offsets, counting newlines once over the whole text."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def __call__(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.line = 0, 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _type_name(value: object) -> str:
    return _JSON_TYPES.get(type(value), "null" if value is None else type(value).__name__)
