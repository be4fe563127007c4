"""One row of an HRP asset document -> the events it states, or the problems that stop it.

Kinds: transfer (调拨单) -> asset.relocated, acceptance (验收单) -> asset.accepted (and
asset.commissioned when the row also gives a 启用日期), commissioning (启用) -> asset.commissioned,
disposal (报废/处置单) -> asset.decommissioned, depreciation (折旧明细) -> asset.valuation_updated,
contract (维保合同/保修) -> asset.contract_registered, calibration (计量/校准证书) -> asset.calibrated.

Pure and per row: recognising the kind, event ids and envelopes are translate.py's business.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from adapters._files.rows import RowReader, local_midnight
from adapters._files.values import ValueParseError, clean_text, parse_date
from schemas._base import DeptRef, LocationRef
from schemas.assets import (
    AcceptedPayload,
    AssetAccepted,
    AssetCalibrated,
    AssetCommissioned,
    AssetContractRegistered,
    AssetDecommissioned,
    AssetRelocated,
    AssetValuationUpdated,
    CalibratedPayload,
    CommissionedPayload,
    ContractRegisteredPayload,
    DecommissionedPayload,
    RelocatedPayload,
    ValuationUpdatedPayload,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from adapters._files.sheet import Record, Sheet
    from adapters.hrp.mapping import HrpMapping
    from schemas._base import HubModel
    from schemas.envelope import EventBase

# 2024-06, 2024/6, 2024.06, 2024年6月, 202406
_PERIOD = re.compile(r"^(?P<y>\d{4})\s*(?:[-/.年]\s*)?(?P<m>\d{1,2})\s*月?$")
# 2024-01-01至2026-12-31, 2024/1/1~2025/12/31, 2024年1月1日到2026年12月31日
_TERM_SEPARATORS = ("至", "到", "~", "～", "—", "–")


@dataclass(frozen=True, slots=True)
class Built:
    """One event a row states: class, payload, business time and what keys its id.

    `kind` names the fact in the id (`doc:<kind>:<number>:<card>`); `number` is the document's own
    number (None: the id falls back to the row's line); `tag` tells apart a second event of the
    same row when there is no number.
    """

    event: Callable[..., EventBase]
    kind: str
    payload: HubModel
    occurred_at: datetime | None
    number: str | None
    tag: str = ""


class HrpReader(RowReader):
    """A RowReader over an HRP export, typed with the HRP mapping's code maps."""

    mapping: HrpMapping

    def __init__(self, sheet: Sheet, record: Record, mapping: HrpMapping) -> None:
        super().__init__(sheet, record, mapping)


def build(kind: str, reader: HrpReader, tz: ZoneInfo) -> list[Built]:
    """The events of one document row; empty when `reader.problems` says why there are none."""
    built = _BUILDERS[kind](reader, tz)
    return [] if reader.problems else built


def parse_period(text: str) -> tuple[str, date]:
    """An accounting period as `YYYY-MM` and its last day; a full date names its month."""
    value = clean_text(text)
    match = _PERIOD.match(value)
    if match is not None:
        year, month = int(match["y"]), int(match["m"])
    else:
        day = parse_date(value)
        year, month = day.year, day.month
    if not 1 <= month <= 12:
        raise ValueParseError(f"{text.strip()!r} is not a period (expected e.g. 2024-06 or 2024年6月)")
    return f"{year:04d}-{month:02d}", date(year, month, calendar.monthrange(year, month)[1])


def parse_term(text: str, formats: tuple[str, ...] = ()) -> tuple[date, date]:
    """A contract term written in one cell (`2024-01-01至2026-12-31`) as its first and last day."""
    value = clean_text(text)
    for separator in _TERM_SEPARATORS:
        if separator in value:
            first, _, last = value.partition(separator)
            return parse_date(first, formats), parse_date(last, formats)
    # `2024.01.01-2026.12.31`: the dash that splits the cell into two dates is the separator.
    for index in (i for i, c in enumerate(value) if c == "-"):
        try:
            return parse_date(value[:index], formats), parse_date(value[index + 1 :], formats)
        except ValueParseError:
            continue  # this dash is inside a date; try the next one
    raise ValueParseError(f"{text.strip()!r} is not a term (expected e.g. 2024-01-01至2026-12-31)")


def _day(r: HrpReader, field: str) -> date | None:
    """The kind's own date column, else the document date; one of them is required."""
    return r.first_date(field, "document_date", required=True)


def _midnight(day: date | None, tz: ZoneInfo) -> datetime | None:
    return None if day is None else local_midnight(day, tz)


def _transfer(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    to = r.department("to_department", required=True)
    source = r.department("from_department")
    source_place = r.text("from_location")
    day = _day(r, "transferred_on")
    if to is None or day is None:
        return []
    number = r.text("document_no")
    payload = RelocatedPayload.model_validate(
        {
            "to": LocationRef(department=to, location=r.text("location")),
            # v2 payload: `from` is the previous place, when the document says where it was.
            "from": _place(source, source_place),
            "reason": r.text("reason"),
            "document_no": number,
        }
    )
    return [Built(AssetRelocated, "transfer", payload, _midnight(day, tz), number)]


def _place(department: DeptRef | None, location: str | None) -> LocationRef | None:
    if department is None and location is None:
        return None
    return LocationRef(department=department or DeptRef(), location=location)


def _acceptance(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    mapping = r.mapping
    day = _day(r, "accepted_on")
    result = r.choice("acceptance_result", mapping.acceptance_table, words=list(mapping.acceptance_results))
    commissioned = r.date("commissioned_on")
    department = r.department("department")
    if day is None:
        return []
    number = r.text("document_no")
    accepted = AcceptedPayload(
        accepted_on=day, result=result or "passed", accepted_by=r.text("accepted_by"), document_no=number
    )
    out = [Built(AssetAccepted, "acceptance", accepted, _midnight(day, tz), number)]
    if commissioned is not None:
        # An acceptance form that records when the device went into use states both facts.
        started = CommissionedPayload(commissioned_on=commissioned, department=department)
        out.append(
            Built(
                AssetCommissioned,
                "commissioning",
                started,
                _midnight(commissioned, tz),
                number,
                "commissioned",
            )
        )
    return out


def _commissioning(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    day = _day(r, "commissioned_on")
    department = r.department("department")
    if day is None:
        return []
    payload = CommissionedPayload(commissioned_on=day, department=department)
    return [Built(AssetCommissioned, "commissioning", payload, _midnight(day, tz), r.text("document_no"))]


def _disposal(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    day = _day(r, "decommissioned_on")
    if day is None:
        return []
    number = r.text("document_no")
    payload = DecommissionedPayload(
        decommissioned_on=day,
        reason=r.text("reason"),
        disposal_method=r.text("disposal_method"),
        document_no=number,
    )
    return [Built(AssetDecommissioned, "disposal", payload, _midnight(day, tz), number)]


def _depreciation(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    period = r.parsed("period", parse_period, "invalid_period", required=True)
    original = r.money("original_value")
    accumulated = r.money("accumulated_depreciation", required=True)
    net = r.money("net_value", required=True)
    method = r.text("depreciation_method")
    if period is None or accumulated is None or net is None:
        return []
    payload = ValuationUpdatedPayload(
        period=period[0],
        original_value=original,
        accumulated_depreciation=accumulated,
        net_value=net,
        method=method,
    )
    # A run has no document number: period and figures key it, so the same run exported twice is
    # one event, while a re-run with corrected figures is a new one (and is not ignored).
    figures = payload.model_dump_json(exclude={"period"})
    number = f"{period[0]}:{hashlib.sha256(figures.encode()).hexdigest()[:12]}"
    return [Built(AssetValuationUpdated, "depreciation", payload, _midnight(period[1], tz), number)]


def _contract(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    mapping = r.mapping
    number = r.text("contract_no", required=True)
    kind = r.choice("contract_kind", mapping.contract_table, words=list(mapping.contract_kinds))
    if kind is None and r.text("contract_kind") is None:
        kind = mapping.default_contract_kind
        if kind is None:
            r.problem("contract_kind", "missing_required", f"{r.title('contract_kind')} is empty")
    starts, ends = r.date("starts_on"), r.date("ends_on")
    if starts is None and ends is None:
        formats = tuple(mapping.date_formats)
        term = r.parsed("contract_term", lambda v: parse_term(v, formats), "invalid_date")
        starts, ends = term or (None, None)
    if starts is not None and ends is not None and ends < starts:
        r.problem("ends_on", "invalid_term", f"the contract ends ({ends}) before it starts ({starts})")
    amount = r.money("amount")
    signed = r.first_date("signed_on") or starts or r.first_date("document_date")
    if number is None or kind is None:
        return []
    payload = ContractRegisteredPayload(
        contract_no=number, kind=kind, vendor=r.text("vendor"), starts_on=starts, ends_on=ends, amount=amount
    )
    return [Built(AssetContractRegistered, "contract", payload, _midnight(signed, tz), number)]


def _calibration(r: HrpReader, tz: ZoneInfo) -> list[Built]:
    mapping = r.mapping
    day = _day(r, "calibrated_on")
    valid_until = r.date("valid_until")
    result = r.choice(
        "calibration_result",
        mapping.calibration_table,
        required=True,
        words=list(mapping.calibration_results),
    )
    if day is not None and valid_until is not None and valid_until < day:
        r.problem(
            "valid_until",
            "invalid_date",
            f"{r.title('valid_until')} {valid_until} is before {r.title('calibrated_on')} {day}",
        )
    if day is None or result is None:
        return []
    number = r.text("certificate_no")
    payload = CalibratedPayload(
        certificate_no=number,
        calibrated_on=day,
        valid_until=valid_until,
        result=result,
        provider=r.text("provider"),
    )
    return [Built(AssetCalibrated, "calibration", payload, _midnight(day, tz), number)]


_BUILDERS: dict[str, Callable[[HrpReader, ZoneInfo], list[Built]]] = {
    "transfer": _transfer,
    "acceptance": _acceptance,
    "commissioning": _commissioning,
    "disposal": _disposal,
    "depreciation": _depreciation,
    "contract": _contract,
    "calibration": _calibration,
}
