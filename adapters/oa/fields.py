"""Reading one OA record's fields for its kind, collecting every problem rather than stopping at one.

A field is found under the first of its names (the kind's own names, then the shared ones) that
the record holds with a non-empty value. Each problem names the field as written in the file and
its canonical name, so a person can find it and a mapping author can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from adapters._files.header import normalise_label
from adapters._files.values import ValueParseError, clean_text, parse_amount
from adapters.oa.values import parse_datetime, parse_end_of_day, parse_level, parse_parts_text, parse_quantity
from schemas._base import DeptRef, Identifier, Money
from schemas.work_orders import Part

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from adapters.oa.mapping import CodeMap, KindName, OaMapping, PartField
    from adapters.oa.records import FieldValue, SourceRecord

T = TypeVar("T")

# Exports repeat the same few dozen keys in every record: normalise each once.
label_of = lru_cache(maxsize=4096)(normalise_label)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a record: canonical field, the name in the file, a code and a reason."""

    field: str
    column: str | None
    code: str
    reason: str


class RecordView:
    """The fields of one record, read as a given kind."""

    def __init__(self, record: SourceRecord, kind: KindName, mapping: OaMapping, tz: ZoneInfo) -> None:
        self.record, self.kind, self.mapping, self.tz = record, kind, mapping, tz
        self.problems: list[Problem] = []
        # Kept, but with a value the mapping does not know (a department by name): dead-letter notes.
        self.notes: list[Problem] = []
        self._table = mapping.field_table(kind)
        self._keys: dict[str, str] = {}
        for key in record.fields:
            self._keys.setdefault(label_of(key), key)

    # -- finding values
    def raw(self, field: str) -> tuple[str, FieldValue] | None:
        """(name in the file, value) of the first non-empty name of `field`, or None."""
        for label in self._table.get(field, ()):
            key = self._keys.get(label)
            if key is None:
                continue
            value = self.record.fields[key]
            if value.strip() if isinstance(value, str) else value:
                return key, value
        return None

    def column(self, field: str) -> str:
        """The name `field` has in this record, else the first name the mapping looks for."""
        found = self.raw(field)
        if found is not None:
            return found[0]
        names = self.mapping.names(self.kind, field)
        return names[0] if names else field

    def text(self, field: str) -> str | None:
        """The field's text, stripped; a list where one value belongs is a problem."""
        found = self.raw(field)
        if found is None:
            return None
        key, value = found
        if not isinstance(value, str):
            self.fail(field, "invalid_value", f"{key} ({field}): holds a list where one value belongs")
            return None
        return value.strip()

    def clean(self, field: str) -> str | None:
        """Text folded to its plain form (full-width ＺＣ-2019 becomes ZC-2019): for keys and codes."""
        value = self.text(field)
        return clean_text(value) if value is not None else None

    def need(self, field: str) -> str | None:
        """A field the event cannot do without, whatever the mapping's `required` says."""
        value = self.clean(field) if field.endswith(("_no", "_id")) else self.text(field)
        if value is None and self.raw(field) is None:
            self.missing(field)
        return value

    def check_required(self) -> None:
        for field in self.mapping.required_fields(self.kind):
            if field == "kind" and self.record.kind is not None:
                continue  # a nested record's kind comes from its mapping rule, not a field
            if self.raw(field) is None:
                self.missing(field)

    def missing(self, field: str) -> None:
        if any(p.field == field and p.code == "missing_required" for p in self.problems):
            return
        names = self.mapping.names(self.kind, field)
        looked = f" (looked for {', '.join(names)})" if names else ""
        self.problems.append(
            Problem(
                field,
                names[0] if names else None,
                "missing_required",
                f"{self.column(field)} ({field}) is missing or empty{looked}",
            )
        )

    def fail(self, field: str, code: str, reason: str) -> None:
        self.problems.append(Problem(field, self.column(field), code, reason))

    def parsed(self, field: str, parse: Callable[[str], T], code: str) -> T | None:
        value = self.text(field)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueParseError as exc:
            self.fail(field, code, f"{self.column(field)} ({field}): {exc}")
            return None

    # -- typed values
    def time(self, field: str, *, end_of_day: bool = False) -> datetime | None:
        parse = parse_end_of_day if end_of_day else parse_datetime
        formats = self.mapping.date_formats
        return self.parsed(field, lambda v: parse(v, self.tz, formats), "invalid_date")

    def money(self, field: str) -> Money | None:
        amount = self.parsed(field, parse_amount, "invalid_amount")
        if amount is None:
            return None
        if amount < 0:
            self.fail(field, "invalid_amount", f"{self.column(field)} ({field}): {amount} is negative")
            return None
        return Money(amount=amount, currency=self.mapping.default_currency)

    def level(self) -> int:
        word = self.clean("level")
        if word is None:
            return 1
        named = self.mapping.level(word)
        if named is not None:
            return named
        return self.parsed("level", parse_level, "invalid_number") or 1

    def department(self, field: str) -> DeptRef | None:
        value = self.text(field)
        if value is None:
            return None
        entry = self.mapping.department(value)
        if entry is not None:
            return entry.ref()
        if self.mapping.strict_departments:
            self.fail(
                field,
                "unknown_department",
                f"{self.column(field)} ({field}): unknown department {value!r} (strict_departments is on)",
            )
            return DeptRef(name=value)
        self.notes.append(
            Problem(
                field,
                self.column(field),
                "department_unknown",
                f"{self.column(field)} ({field}): {value!r} is not in the mapping's departments: the record "
                "is kept with the department as the file names it, no code (add it, or an alias, under "
                "departments, then retry)",
            )
        )
        return DeptRef(name=value)

    def code(self, field: str, codes: CodeMap[T]) -> T | None:
        word = self.clean(field)
        if word is None:
            return codes.default
        value = codes.lookup(word)
        if value is not None:
            return value
        if codes.strict:
            known = ", ".join(codes.codes)
            self.fail(
                field,
                "unknown_code",
                f"{self.column(field)} ({field}): unknown code {word!r}; known: {known}",
            )
            return None
        return codes.fallback()

    def asset(self) -> Identifier | None:
        """The asset's identifier from the first identifier field present (mapping order)."""
        for rule in self.mapping.asset_identifiers:
            value = self.clean(rule.field)
            if value:
                return Identifier(scheme=rule.scheme, value=value)
        names = [
            n for rule in self.mapping.asset_identifiers for n in self.mapping.names(self.kind, rule.field)
        ]
        first = names[0] if names else "asset"
        reason = f"{first} (asset) is missing or empty: no asset identifier (looked for {', '.join(names)})"
        self.problems.append(Problem("asset", first, "missing_required", reason))
        return None

    def parts(self) -> list[Part]:
        found = self.raw("parts")
        if found is None:
            return []
        key, value = found
        items = (value,) if isinstance(value, str) else value
        parts: list[Part] = []
        for number, item in enumerate(items, start=1):
            try:
                parts.extend(self._part(item))
            except ValueParseError as exc:
                self.fail("parts", "invalid_value", f"{key} (parts) item {number}: {exc}")
        return parts

    def _part(self, item: str | Mapping[str, str]) -> list[Part]:
        if isinstance(item, str):
            return [Part(name=p.name, quantity=p.quantity) for p in parse_parts_text(item)]
        values = {label_of(k): v.strip() for k, v in item.items() if v.strip()}

        def get(name: PartField) -> str | None:
            return next((values[label] for label in self.mapping.part_labels(name) if label in values), None)

        part_name = get("name")
        if part_name is None:
            raise ValueParseError(
                f"has no part name (looked for {', '.join(self.mapping.part_columns.get('name', []))})"
            )
        quantity_text = get("quantity")
        quantity = parse_quantity(quantity_text) if quantity_text else Decimal(1)
        cost_text, price_text = get("cost"), get("unit_price")
        amount = (
            parse_amount(cost_text)
            if cost_text
            else parse_amount(price_text) * quantity
            if price_text
            else None
        )
        if amount is not None and amount < 0:
            raise ValueParseError(f"part {part_name!r} has a negative cost")
        cost = Money(amount=amount, currency=self.mapping.default_currency) if amount is not None else None
        code = get("code")
        return [Part(code=clean_text(code) if code else None, name=part_name, quantity=quantity, cost=cost)]
