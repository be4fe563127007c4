"""One ledger row -> identifiers and AssetDetails, or the list of what is wrong with it.

Pure and per row: duplicates across rows and event building are translate.py's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from adapters._files.rows import RowProblem, unknown_department
from adapters._files.values import ValueParseError, clean_text, parse_amount, parse_date
from schemas._base import DeptRef, Identifier, Money
from schemas.assets import AssetDetails, AssetStatus, Category

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date
    from decimal import Decimal

    from adapters._files.sheet import Record, Sheet
    from adapters.hrp.mapping import HrpMapping

T = TypeVar("T")

# "6854 手术室、急救室、诊疗室设备及器具" / "6821-医用电子仪器设备" / "6854": code, then a name.
_CATEGORY = re.compile(r"^(?P<code>\d[\dA-Za-z.]*)\s*[-:：、\s]?\s*(?P<name>.*)$")


@dataclass(frozen=True, slots=True)
class RowAsset:
    """What a good row says about one asset."""

    card_no: str
    identifiers: tuple[Identifier, ...]
    details: AssetDetails
    notes: tuple[RowProblem, ...] = ()  # kept with a value the mapping does not know


def card_number(sheet: Sheet, record: Record) -> str:
    """The row's card number as the asset key: NFKC-folded (full-width ＺＣ becomes ZC), stripped."""
    return clean_text(sheet.text(record, "card_no"))


def read_row(sheet: Sheet, record: Record, mapping: HrpMapping) -> RowAsset | list[RowProblem]:
    """Read every mapped field of `record`; return the asset, or every problem found (not just one)."""
    reader = _RowReader(sheet, record, mapping)
    asset = reader.asset()
    return reader.problems or asset


class _RowReader:
    def __init__(self, sheet: Sheet, record: Record, mapping: HrpMapping) -> None:
        self.sheet, self.record, self.mapping = sheet, record, mapping
        self.problems: list[RowProblem] = []
        self.notes: list[RowProblem] = []

    def text(self, field: str) -> str | None:
        value = clean_text(self.sheet.text(self.record, field))
        if not value and field in self.mapping.required:
            title = self.sheet.header.title_of(field) or field
            self.problems.append(RowProblem(field, "missing_required", f"{title} is empty"))
        return value or None

    def parsed(self, field: str, parse: Callable[[str], T], code: str) -> T | None:
        value = self.text(field)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueParseError as exc:
            title = self.sheet.header.title_of(field) or field
            self.problems.append(RowProblem(field, code, f"{title}: {exc}"))
            return None

    def money(self, field: str) -> Money | None:
        amount = self.parsed(field, parse_amount, "invalid_amount")
        if amount is not None and amount < 0 and field == "original_value":
            title = self.sheet.header.title_of(field) or field
            self.problems.append(RowProblem(field, "invalid_amount", f"{title}: {amount} is negative"))
        return None if amount is None else Money(amount=amount, currency=self.mapping.default_currency)

    def acquired_on(self) -> date | None:
        formats = self.mapping.date_formats
        return self.parsed("acquired_on", lambda v: parse_date(v, formats), "invalid_date")

    def useful_life(self) -> Decimal | None:
        return self.parsed("useful_life_years", lambda v: parse_amount(v, suffixes=("年",)), "invalid_number")

    def department(self) -> DeptRef | None:
        value = self.text("department")
        if value is None:
            return None
        entry = self.mapping.department(value)
        if entry is not None:
            return entry.ref()
        if self.mapping.strict_departments:
            title = self.sheet.header.title_of("department") or "department"
            self.problems.append(
                RowProblem(
                    "department",
                    "unknown_department",
                    f"{title}: {value!r} is not in the mapping's departments (strict_departments is on)",
                )
            )
        else:
            self.notes.append(
                unknown_department(
                    self.sheet.header.title_of("department") or "department", "department", value
                )
            )
        return DeptRef(name=value)

    def status(self) -> tuple[AssetStatus | None, str | None]:
        value = self.text("status")
        if value is None:
            return None, None
        return self.mapping.status(value) or AssetStatus.UNKNOWN, value

    def category(self) -> Category | None:
        value = self.text("category")
        if value is None:
            return None
        match = _CATEGORY.match(value)
        if match is None:
            return Category(name=value)
        return Category(code=match["code"], name=match["name"].strip() or None)

    def asset(self) -> RowAsset:
        card = self.text("card_no") or ""
        name = self.text("name")
        manufacturer = self.text("manufacturer")
        serial = self.text("serial_number")
        udi = self.text("udi")
        status, status_text = self.status()
        details = AssetDetails(
            name=name,
            model=self.text("model"),
            manufacturer=manufacturer,
            serial_number=serial,
            udi=udi,
            category=self.category(),
            department=self.department(),
            location=self.text("location"),
            acquired_on=self.acquired_on(),
            original_value=self.money("original_value"),
            accumulated_depreciation=self.money("accumulated_depreciation"),
            net_value=self.money("net_value"),
            status=status,
            status_text=status_text,
            funding_source=self.text("funding_source"),
            useful_life_years=self.useful_life(),
        )
        identifiers = [Identifier(scheme="hrp.card", value=card)] if card else []
        if manufacturer and serial:
            identifiers.append(Identifier(scheme="serial", value=f"{manufacturer}|{serial}"))
        if udi:
            identifiers.append(Identifier(scheme="udi", value=udi))
        return RowAsset(
            card_no=card, identifiers=tuple(identifiers), details=details, notes=tuple(self.notes)
        )
