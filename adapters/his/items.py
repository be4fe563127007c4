"""MFN^M16 (inventory item master): ITM -> `inventory.item_defined`, IVT -> `inventory.threshold_set`.

Each MFE starts a group (MFE, ITM, IVT..., PKG, PCE, NTE). MFE-1 MAD/MUP/MAC define the item;
MDL (delete) and MDC (deactivate) have no canonical event and are skipped, with a reason.

- item code: ITM-1.1, else MFE-4.1; subject = item_id_for("his", code);
- item fields: from the mapping's `item_master` references (name ITM-2, spec ITM-9, unit
  PKG-2.2, category ITM-5.2, supplier ITM-8, price ITM-13.1.1 with ITM-13.1.2 currency,
  high value when ITM-4.1 is in `high_value_codes`), resolved within the group;
- per IVT (position `IVT:<n>`): location IVT-2.1 / IVT-3 through the mapping; minimum and
  reorder point IVT-24 (recommended order point), maximum = minimum + IVT-25 (recommended order
  amount) unless the mapping names a maximum field; an IVT without an order point is skipped;
- occurred_at: MFE-3 (effective date), else MSH-7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from adapters.his.context import MessageContext, UnitProblem
from schemas._base import Money
from schemas.ids import item_id_for
from schemas.inventory import (
    InventoryItemDefined,
    InventoryThresholdSet,
    ItemDefinedPayload,
    ThresholdSetPayload,
)

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.his.tokenize import Segment

_NO_EVENT = {"MDL": "delete", "MDC": "deactivate"}


@dataclass
class _Units:
    """The units of one MFE group and their positions."""

    itm: Segment | None
    itm_position: str
    ivts: list[tuple[Segment, str]] = field(default_factory=list)

    @property
    def positions(self) -> list[str]:
        return [self.itm_position, *(p for _, p in self.ivts)]


def translate_items(mc: MessageContext) -> None:
    groups = _groups(mc)
    if not groups:
        mc.skip(f"{mc.type_label} has no MFE segment")
    counts = {"ITM": 0, "IVT": 0}
    for number, (mfe, group) in enumerate(groups, 1):
        units = _units(mc, mfe, number, group, counts)
        mc.units += 1 + len(units.ivts)
        _translate_group(mc, mfe, group, units)


def _units(
    mc: MessageContext, mfe: Segment, number: int, group: list[Segment], counts: dict[str, int]
) -> _Units:
    itm = next((s for s in group if s.id == "ITM"), None)
    if itm is not None:
        counts["ITM"] += 1
    units = _Units(itm, mc.position(itm, counts["ITM"]) if itm is not None else mc.position(mfe, number))
    for ivt in (s for s in group if s.id == "IVT"):
        counts["IVT"] += 1
        units.ivts.append((ivt, mc.position(ivt, counts["IVT"])))
    return units


def _translate_group(mc: MessageContext, mfe: Segment, group: list[Segment], units: _Units) -> None:
    event_code = mfe.field(1).strip().upper()
    if event_code in _NO_EVENT:
        mc.skip(f"{units.itm_position}: MFE-1 {event_code} ({_NO_EVENT[event_code]}) has no canonical event")
        return
    try:
        code = _item_code(mfe, units.itm)
        occurred = mc.first_time((mfe, 3, 1))
    except UnitProblem as problem:
        for position in units.positions:
            mc.fail(position, problem)
        return
    if units.itm is not None:
        try:
            _item(mc, units.itm, group, position=units.itm_position, code=code, occurred=occurred)
        except UnitProblem as problem:
            mc.fail(units.itm_position, problem)
    for ivt, position in units.ivts:
        try:
            _threshold(mc, ivt, group, position=position, code=code, occurred=occurred)
        except UnitProblem as problem:
            mc.fail(position, problem)


def _item_code(mfe: Segment, itm: Segment | None) -> str:
    code = (itm.field(1, 1).strip() if itm is not None else "") or mfe.field(4, 1).strip()
    if not code:
        raise UnitProblem(itm or mfe, "ITM-1", "missing_field", "ITM-1 (item identifier) and MFE-4 are empty")
    return code


def _groups(mc: MessageContext) -> list[tuple[Segment, list[Segment]]]:
    groups: list[tuple[Segment, list[Segment]]] = []
    for segment in mc.message.segment_list:
        if segment.id == "MFE":
            groups.append((segment, []))
        elif groups:
            groups[-1][1].append(segment)
    return groups


def _item(
    mc: MessageContext, itm: Segment, group: list[Segment], *, position: str, code: str, occurred: datetime
) -> None:
    rules = mc.mapping.item_master

    def value(ref: str | None) -> str:
        return mc.resolve(ref, itm, group)[0] if ref else ""

    name = value(rules.name)
    if not name:
        raise UnitProblem(itm, rules.name, "missing_field", f"{rules.name} (item name) is empty")
    price_text = value(rules.price)
    amount = _decimal(itm, rules.price or "", price_text) if price_text else None
    currency = (value(rules.currency) or "CNY").upper()
    high_value = bool(rules.high_value_field) and value(rules.high_value_field).upper() in {
        c.upper() for c in rules.high_value_codes
    }
    payload = {
        "item_code": code,
        "name": name,
        "spec": value(rules.spec) or None,
        "unit": value(rules.unit) or None,
        "gtin": value(rules.gtin) or None,
        "udi_di": value(rules.udi_di) or None,
        "high_value": high_value,
        "category": value(rules.category) or None,
        "supplier": value(rules.supplier) or None,
    }
    mc.emit(
        position,
        itm,
        lambda: InventoryItemDefined(
            event_id=mc.event_id(position),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=item_id_for("his", code),
            payload=ItemDefinedPayload.model_validate(
                {**payload, "price": None if amount is None else Money(amount=amount, currency=currency)}
            ),
        ),
    )


def _threshold(
    mc: MessageContext, ivt: Segment, group: list[Segment], *, position: str, code: str, occurred: datetime
) -> None:
    rules = mc.mapping.item_master

    def number(ref: str | None) -> Decimal | None:
        if not ref:
            return None
        text, _ = mc.resolve(ref, ivt, group)
        return _decimal(ivt, ref, text) if text else None

    minimum = number(rules.minimum)
    if minimum is None:
        mc.skip(f"{position}: no order point ({rules.minimum}): the IVT sets no threshold")
        return
    location = mc.place(ivt, "IVT-2", ivt.field(2, 1).strip(), ivt.field(3).strip(), keep_unknown=False)
    maximum = number(rules.maximum)
    if maximum is None:
        amount = number(rules.order_amount)
        if amount is None:
            missing = rules.maximum or rules.order_amount or "maximum"
            raise UnitProblem(
                ivt, missing, "missing_field", f"{missing} is empty: the maximum stock level is unknown"
            )
        maximum = minimum + amount
    if maximum < minimum:
        raise UnitProblem(
            ivt,
            rules.maximum or rules.minimum,
            "invalid_number",
            f"maximum {maximum} is below minimum {minimum}",
        )
    reorder = number(rules.reorder_point)
    mc.emit(
        position,
        ivt,
        lambda: InventoryThresholdSet(
            event_id=mc.event_id(position),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=item_id_for("his", code),
            payload=ThresholdSetPayload(
                location=location, minimum=minimum, maximum=maximum, reorder_point=reorder
            ),
        ),
    )


def _decimal(segment: Segment, label: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise UnitProblem(segment, label, "invalid_number", f"{label}: {text!r} is not a number") from exc
    if not value.is_finite() or value < 0:
        raise UnitProblem(
            segment, label, "invalid_number", f"{label}: {text!r} must be a number of 0 or more"
        )
    return value
