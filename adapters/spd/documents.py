"""One SPD row of a known document kind -> the payload of its inventory event, or its problems.

Pure and per row: recognising the kind, event ids and envelopes are translate.py's business.
Each builder reads what its event needs through an `SpdReader`; when the reader collected any
problem, the builder returns None and the row becomes one Failure listing all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters._files.rows import local_midnight
from adapters.spd.barcode import as_hri
from schemas.inventory import (
    AdjustedPayload,
    ConsumedPayload,
    DisposedPayload,
    InventoryAdjusted,
    InventoryConsumed,
    InventoryDisposed,
    InventoryItemDefined,
    InventoryReceived,
    InventoryThresholdSet,
    InventoryTransferred,
    ItemDefinedPayload,
    ReceivedPayload,
    ThresholdSetPayload,
    TransferredPayload,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from adapters.spd.fields import SpdReader
    from schemas._base import HubModel
    from schemas.envelope import EventBase
    from schemas.inventory import Barcode


@dataclass(frozen=True, slots=True)
class Built:
    """What one good row says: the event class, its payload, business time and document key.

    `number` is the document's own number (入库单号...), `detail` what tells this line apart within
    it; together they key the event id so one document in two exports is one event.
    """

    event: Callable[..., EventBase]  # the event class
    payload: HubModel
    occurred_at: datetime | None
    number: str | None = None
    detail: str = ""


def build(kind: str, reader: SpdReader, tz: ZoneInfo) -> Built | None:
    """The row as its kind's event, or None when `reader.problems` says why it cannot be."""
    return _BUILDERS[kind](reader, tz)


def _item_master(r: SpdReader, tz: ZoneInfo) -> Built | None:
    code, name = r.item_code(), r.text("name", required=True)
    gtin = r.gtin("gtin")
    udi_di, udi_gtin = r.udi_di()
    scan = r.barcode(gtin=gtin or udi_gtin)
    scan_gtin = scan.gtin if scan is not None and scan.parse_error is None else None
    high_value = r.choice("high_value", r.mapping.high_value_table, words=list(r.mapping.high_value_words))
    price = r.money("unit_price")
    effective = r.first_date("effective_on", "document_date")
    if r.problems or code is None or name is None:
        return None
    payload = ItemDefinedPayload(
        item_code=code,
        name=name,
        spec=r.text("spec"),
        unit=r.text("unit"),
        # A GS1 UDI-DI is the GTIN of the unit: an item master that only fills 产品标识 still
        # gives scans something to match.
        gtin=gtin or udi_gtin or scan_gtin,
        udi_di=udi_di,
        high_value=bool(high_value),
        category=r.text("category"),
        supplier=r.text("supplier"),
        price=price,
    )
    return Built(InventoryItemDefined, payload, _midnight(effective, tz))


def _threshold(r: SpdReader, tz: ZoneInfo) -> Built | None:
    location = r.place(("department", "store"), default_store=True)
    minimum = r.quantity("minimum", required=True, allow_zero=True)
    maximum = r.quantity("maximum", required=True, allow_zero=True)
    reorder = r.quantity("reorder_point", allow_zero=True)
    if minimum is not None and maximum is not None and minimum > maximum:
        r.problem(
            "maximum",
            "invalid_threshold",
            f"{r.title('maximum')} {maximum} is below {r.title('minimum')} {minimum}",
        )
    if reorder is not None and maximum is not None and reorder > maximum:
        r.problem(
            "reorder_point",
            "invalid_threshold",
            f"{r.title('reorder_point')} {reorder} is above {r.title('maximum')} {maximum}",
        )
    effective = r.first_date("effective_on", "document_date")
    if r.problems or location is None or minimum is None or maximum is None:
        return None
    payload = ThresholdSetPayload(location=location, minimum=minimum, maximum=maximum, reorder_point=reorder)
    return Built(InventoryThresholdSet, payload, _midnight(effective, tz))


def _receipt(r: SpdReader, tz: ZoneInfo) -> Built | None:
    location = r.place(("store", "department"), default_store=True)
    quantity = r.quantity("quantity", required=True)
    lot, expiry, serials = r.text("lot"), r.date("expiry"), r.serials()
    scan = r.barcode(lot=lot, expiry=expiry, serials=serials)
    lot, expiry, serials = _fill(scan, lot, expiry, serials)
    _check_serial_count(r, quantity, serials)
    unit_cost = r.money("unit_price")
    when = _day(r, "received_on", tz)
    if r.problems or location is None or quantity is None:
        return None
    payload = ReceivedPayload(
        **_item(r),
        location=location,
        quantity=quantity,
        lot=lot,
        expiry=expiry,
        serials=serials,
        supplier=r.text("supplier"),
        po_number=r.text("po_number"),
        unit_cost=unit_cost,
        barcode=scan,
    )
    return Built(InventoryReceived, payload, when, *_document(r, lot, serials))


def _distribution(r: SpdReader, tz: ZoneInfo) -> Built | None:
    # The bin (货位) is where the goods were picked: a place in the issuing store.
    source = r.place(("store",), default_store=True)
    target = r.place(("department",), default_store=False, bin_here=False)
    quantity = r.quantity("quantity", required=True)
    lot, expiry, serials = r.text("lot"), r.date("expiry"), r.serials()
    scan = r.barcode(lot=lot, expiry=expiry, serials=serials)
    lot, _, serials = _fill(scan, lot, expiry, serials)
    _check_serial_count(r, quantity, serials)
    when = _day(r, "distributed_on", tz)
    if r.problems or source is None or target is None or quantity is None:
        return None
    number = r.text("document_no")
    payload = TransferredPayload(
        **_item(r),
        from_location=source,
        to_location=target,
        quantity=quantity,
        lot=lot,
        serials=serials,
        document_no=number,
    )
    return Built(InventoryTransferred, payload, when, *_document(r, lot, serials))


def _consumption(r: SpdReader, tz: ZoneInfo) -> Built | None:
    location = r.place(("department", "store"), default_store=False, correctable=True)
    quantity = r.quantity("quantity") if r.text("quantity") else Decimal(1)  # a scan is one unit
    lot, expiry, serials = r.text("lot"), r.date("expiry"), r.serials()
    if len(serials) > 1:
        r.problem(
            "serials",
            "several_serials",
            f"{r.title('serials')}: a consumption scan names one unit, this row lists {len(serials)}",
        )
    scan = r.barcode(lot=lot, expiry=expiry, serials=serials)
    lot, _, serials = _fill(scan, lot, expiry, serials)
    when = r.first_moment("consumed_at", "document_date", tz=tz, required=True)
    if r.problems or location is None or quantity is None:
        return None
    payload = ConsumedPayload(
        **_item(r),
        location=location,
        quantity=quantity,
        lot=lot,
        serial=serials[0] if serials else None,
        udi=r.text("udi") or (as_hri(scan) if scan is not None else None),
        barcode=scan,
        procedure_code=r.text("procedure_code"),
        charge_id=r.text("charge_id"),
    )
    number = r.text("document_no") or payload.charge_id
    return Built(InventoryConsumed, payload, when, number, _detail(r, lot, serials))


def _stocktake(r: SpdReader, tz: ZoneInfo) -> Built | None:
    location = r.place(("department", "store"), default_store=True)
    counted = r.quantity("counted_quantity", required=True, allow_zero=True)
    book = r.quantity("book_quantity", allow_zero=True)
    # A count names no expiry or serial; a scanned code still says which lot was counted.
    scan = r.barcode(lot=r.text("lot"))
    lot = _fill(scan, r.text("lot"), None, [])[0]
    when = _day(r, "counted_on", tz)
    if r.problems or location is None or counted is None:
        return None
    payload = AdjustedPayload(
        **_item(r),
        location=location,
        lot=lot,
        counted_quantity=counted,
        book_quantity=book,
        reason=r.text("adjust_reason") or r.text("note"),
    )
    return Built(InventoryAdjusted, payload, when, *_document(r, lot, []))


def _disposal(r: SpdReader, tz: ZoneInfo) -> Built | None:
    location = r.place(("department", "store"), default_store=True)
    quantity = r.quantity("quantity", required=True)
    reason = r.choice(
        "disposal_reason", r.mapping.disposal_table, required=True, words=list(r.mapping.disposal_reasons)
    )
    lot, expiry, serials = r.text("lot"), r.date("expiry"), r.serials()
    scan = r.barcode(lot=lot, expiry=expiry, serials=serials)
    lot, _, serials = _fill(scan, lot, expiry, serials)
    _check_serial_count(r, quantity, serials)
    when = _day(r, "disposed_on", tz)
    if r.problems or location is None or quantity is None or reason is None:
        return None
    note = r.text("note")
    written = r.text("disposal_reason")
    payload = DisposedPayload(
        **_item(r),
        location=location,
        quantity=quantity,
        lot=lot,
        serials=serials,
        reason=reason,
        # The export's own word is kept when it says more than the canonical reason.
        note=note if reason != "other" else "; ".join(t for t in (written, note) if t) or None,
    )
    return Built(InventoryDisposed, payload, when, *_document(r, lot, serials))


def _item(r: SpdReader) -> dict[str, str | None]:
    # The row's own item code and name travel with the movement: a read model that has no item
    # master yet defines the item from them (flagged provisional) instead of showing a bare id.
    return {"item_code": r.text("item_code"), "item_name": r.text("name")}


def _fill(
    scan: Barcode | None, lot: str | None, expiry: date | None, serials: list[str]
) -> tuple[str | None, date | None, list[str]]:
    """Row values, completed by what a parsed scan says where the row is silent."""
    if scan is None or scan.parse_error is not None:
        return lot, expiry, serials
    return (
        lot or scan.lot,
        expiry if expiry is not None else scan.expiry,
        serials or ([scan.serial] if scan.serial else []),
    )


def _check_serial_count(r: SpdReader, quantity: Decimal | None, serials: list[str]) -> None:
    # Serial-tracked goods carry one serial per unit: a count that differs is a typing error.
    if quantity is not None and serials and Decimal(len(serials)) != quantity:
        r.problem(
            "serials",
            "serial_count",
            f"{r.title('serials')} lists {len(serials)} serials but {r.title('quantity')} is {quantity}",
        )


def _day(r: SpdReader, field: str, tz: ZoneInfo) -> datetime | None:
    """The business date: the kind's own date column, else the document date; one is required."""
    return _midnight(r.first_date(field, "document_date", required=True), tz)


def _midnight(day: date | None, tz: ZoneInfo) -> datetime | None:
    return None if day is None else local_midnight(day, tz)


def _document(r: SpdReader, lot: str | None, serials: list[str]) -> tuple[str | None, str]:
    return r.text("document_no"), _detail(r, lot, serials)


def _detail(r: SpdReader, lot: str | None, serials: list[str]) -> str:
    # The document's own line number when it has one; else what the line is about.
    return r.text("line_no") or f"{r.text('item_code')}|{lot or ''}|{';'.join(serials)}"


_BUILDERS: dict[str, Callable[[SpdReader, ZoneInfo], Built | None]] = {
    "item_master": _item_master,
    "threshold": _threshold,
    "receipt": _receipt,
    "distribution": _distribution,
    "consumption": _consumption,
    "stocktake": _stocktake,
    "disposal": _disposal,
}
