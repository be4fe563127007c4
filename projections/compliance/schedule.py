"""What is due for one asset: a pure function of its stored facts and the configuration.

Per asset, at most one obligation per kind:
- preventive_maintenance, calibration, electrical_safety, for kinds the rules give the asset:
  due = the latest passing activity of that kind + the interval (an inspection's own
  `next_due_on` wins when the source states it); without one, commissioning (else acceptance,
  else acquisition) + the interval. A failed calibration or inspection does not restart the
  clock: the device stays due (or overdue) until one passes. An inspection that states its next
  due date counts even for a kind no rule gives the asset: the source knows better.
  Such a due date is `projected` (the hub's estimate, listed but never notified) while no
  calibration or inspection of that kind, passing or not, is on record and its basis is one of
  `config.projected_bases` (by default every start of service: a legacy ledger's purchase date
  says nothing about when the device was last calibrated). The first real record of the kind
  confirms the schedule; from then on due and overdue notices apply.
- certificate: the `valid_until` of the latest passing calibration certificate.
- contract, warranty: the end date of the contract of that kind that ends last (a renewal
  supersedes the contract it renews).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from projections.compliance.rules import INTERVAL_KINDS, add_months

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

    from projections.compliance.rules import ComplianceConfig

Row = Mapping[str, Any]
_PASSING = {"calibration": frozenset({"passed", "limited"})}
_DEFAULT_PASSING = frozenset({"passed"})


def _latest(rows: Sequence[Row]) -> Row | None:
    return max(rows, key=lambda r: (r["done_on"], r["occurred_at"], r["event_id"])) if rows else None


def obligations(
    asset: Row, activities: Sequence[Row], contracts: Sequence[Row], config: ComplianceConfig
) -> list[dict[str, Any]]:
    """The `compliance_items` rows of one asset (notice flags cleared)."""
    out: list[dict[str, Any]] = []

    def item(kind: str, due_on: date | None, basis: str, **extra: Any) -> None:
        row = {
            "asset_id": asset["asset_id"],
            "kind": kind,
            "ref": None,
            "due_on": due_on,
            "basis": basis,
            "last_done_on": None,
            "last_result": None,
            "interval_months": None,
            "cause_event_id": asset["registered_event_id"],
            "active": not asset["decommissioned"],
            "asset_name": asset["name"],
            "category_code": asset["category_code"],
            "category_name": asset["category_name"],
            "department_code": asset["department_code"],
            "department_name": asset["department_name"],
            "site": asset["site"],
            "due_notice": False,
            "overdue_notice": False,
            "scheduled": False,
            "projected": False,
        }
        row.update(extra)
        out.append(row)

    intervals = config.intervals(asset["category_code"], asset["category_name"], asset["name"])
    for kind in INTERVAL_KINDS:
        of_kind = [a for a in activities if a["kind"] == kind]
        passing = [a for a in of_kind if a["result"] in _PASSING.get(kind, _DEFAULT_PASSING)]
        done, latest = _latest(passing), _latest(of_kind)
        months = intervals.get(kind)
        extra: dict[str, Any] = {
            "interval_months": months,
            "last_done_on": done["done_on"] if done else None,
            "last_result": latest["result"] if latest else None,
        }
        if done is not None and done["next_due_on"] is not None:
            item(kind, done["next_due_on"], "next_due", cause_event_id=done["event_id"], **extra)
        elif months is None:
            continue
        elif done is not None:
            basis = "calibrated" if kind == "calibration" else "inspected"
            item(kind, add_months(done["done_on"], months), basis, cause_event_id=done["event_id"], **extra)
        else:
            base, basis = _start_of_service(asset)
            projected = latest is None and basis in config.projected_bases
            item(kind, add_months(base, months) if base else None, basis, projected=projected, **extra)

    calibrations = [
        a for a in activities if a["kind"] == "calibration" and a["result"] in _PASSING["calibration"]
    ]
    certificate = _latest([a for a in calibrations if a["valid_until"] is not None])
    if certificate is not None:
        item(
            "certificate",
            certificate["valid_until"],
            "certificate",
            ref=certificate["reference"],
            last_done_on=certificate["done_on"],
            last_result=certificate["result"],
            cause_event_id=certificate["event_id"],
        )

    for term in ("contract", "warranty"):
        dated = [c for c in contracts if c["kind"] == term and c["ends_on"] is not None]
        if dated:
            last = max(dated, key=lambda c: (c["ends_on"], c["contract_no"]))
            item(term, last["ends_on"], "contract", ref=last["contract_no"], cause_event_id=last["event_id"])
    return out


def _start_of_service(asset: Row) -> tuple[date | None, str]:
    for column, basis in (
        ("commissioned_on", "commissioned"),
        ("accepted_on", "accepted"),
        ("acquired_on", "acquired"),
    ):
        if asset[column] is not None:
            return asset[column], basis
    return None, "unknown"
