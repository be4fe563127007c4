"""Emergency availability: which devices of a type are ready now, per department, in milliseconds.

Kept by the asset registry (it knows every golden record's state), in two narrow tables:
- `asset_registry_availability`: one row per device not decommissioned, with its availability
  class precomputed on apply (ready, on_loan, under_repair, calibration_due, unavailable), the
  day its readiness expires (calibration validity), its kind, category, department and whether
  it is in the emergency pool. Rewritten only when one of these changes.
- `asset_registry_kinds`: the distinct (name, model) pairs of those devices, a few thousand at
  most. `type=呼吸机` is a substring match over this small table, then an indexed lookup of the
  devices of the matching kinds: no scan of the 10^5 devices.

Time-dependent parts are decided at query time against the caller's `today`: a `ready` device
whose calibration ran out before today counts as `calibration_due`.

Classes, first match wins: `under_repair` (status); `on_loan` (an open loan to another
department, or status on_loan); `unavailable` (status other than in_use/idle: sealed, awaiting
acceptance, unknown...); `calibration_due` (the last calibration failed, or the category requires
calibration and none is recorded); else `ready`.

Configuration (`AvailabilityConfig`, part of the registry's config):
- `pool_asset_ids`: hub asset ids in the emergency pool.
- `pool_cards`: HRP card numbers in the pool (matched through the id minted from the card, which
  is the golden id of every device the HRP ledger registered).
- `pool_rules`: `PoolRule(department=, name_contains=, category=)`; a device matching every
  field given in one rule is in the pool (department: code or name; category: code).
- `calibration_required_categories`: category codes whose devices are not ready without a
  recorded valid calibration (default: none; an unrecorded calibration is "not required").
Pool flags are evaluated on apply: after changing the pool, rebuild the projection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, exists, func, or_, select

from projections.assets.tables import assets, availability, kinds
from projections.runtime.upsert import chunks, in_values, upsert
from schemas._base import Identifier
from schemas.assets import AssetStatus
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

    from sqlalchemy import ColumnElement, Connection

READY, ON_LOAN, UNDER_REPAIR, CALIBRATION_DUE, UNAVAILABLE = (
    "ready", "on_loan", "under_repair", "calibration_due", "unavailable",
)  # fmt: skip
CLASSES = (READY, ON_LOAN, UNDER_REPAIR, CALIBRATION_DUE, UNAVAILABLE)
_SERVICEABLE = frozenset({AssetStatus.IN_USE.value, AssetStatus.IDLE.value})
_GONE = frozenset({AssetStatus.SCRAPPED.value})


@dataclass(frozen=True)
class PoolRule:
    """Devices matching every field given here are in the emergency pool."""

    department: str | None = None
    name_contains: str | None = None
    category: str | None = None

    def matches(self, row: dict[str, Any]) -> bool:
        if self.department is not None and self.department not in (
            row["department_code"],
            row["department_name"],
        ):
            return False
        if self.name_contains is not None and self.name_contains not in (row["name"] or ""):
            return False
        return self.category is None or self.category == row["category_code"]


@dataclass(frozen=True)
class AvailabilityConfig:
    """Emergency pool membership and calibration requirements (see the module docstring)."""

    pool_asset_ids: frozenset[str] = frozenset()
    pool_cards: frozenset[str] = frozenset()
    pool_rules: tuple[PoolRule, ...] = ()
    calibration_required_categories: frozenset[str] = frozenset()
    _pool_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        minted = {asset_id_for(Identifier(scheme="hrp.card", value=card)) for card in self.pool_cards}
        object.__setattr__(self, "_pool_ids", frozenset(self.pool_asset_ids) | minted)

    def in_pool(self, row: dict[str, Any]) -> bool:
        return row["asset_id"] in self._pool_ids or any(rule.matches(row) for rule in self.pool_rules)


@lru_cache(maxsize=1 << 14)  # a fleet has hundreds of (name, model) pairs; each row asks twice a batch
def kind_id(name: str | None, model: str | None) -> str | None:
    """A stable key for a (name, model) pair; None when the device has neither."""
    if name is None and model is None:
        return None
    return hashlib.blake2b(f"{name or ''}\x1f{model or ''}".encode(), digest_size=8).hexdigest()


def availability_row(row: dict[str, Any], config: AvailabilityConfig) -> dict[str, Any] | None:
    """The availability row of a golden record's row; None for a decommissioned device."""
    status = row["status"]
    if row["decommissioned"] or status in _GONE:
        return None
    ready_until = None
    if status == AssetStatus.UNDER_REPAIR.value:
        klass = UNDER_REPAIR
    elif status == AssetStatus.ON_LOAN.value or (row["on_loan"] and _lent_elsewhere(row)):
        klass = ON_LOAN
    elif status not in _SERVICEABLE:
        klass = UNAVAILABLE
    elif row["calibration_result"] == "failed" or (
        row["calibration_result"] is None and row["category_code"] in config.calibration_required_categories
    ):
        klass = CALIBRATION_DUE
    else:
        klass, ready_until = READY, row["calibration_valid_until"]
    return {
        "asset_id": row["asset_id"],
        "kind_id": kind_id(row["name"], row["model"]),
        "category_code": row["category_code"],
        "department_code": row["department_code"],
        "department_name": row["department_name"],
        "availability": klass,
        "ready_until": ready_until,
        "pool": config.in_pool(row),
    }


def _lent_elsewhere(row: dict[str, Any]) -> bool:
    home, borrower = row["department_code"], row["loan_borrower_code"]
    if home is not None and borrower is not None:
        return bool(home != borrower)
    home, borrower = row["department_name"], row["loan_borrower_name"]
    return home is None or borrower is None or home != borrower


def write(
    conn: Connection,
    changed: dict[str, dict[str, Any] | None],
    before: dict[str, str | None],
    names: dict[str, tuple[str | None, str | None]],
) -> None:
    """Store changed availability rows (None: delete) and keep `kinds` = the kinds in use.

    `before`: the stored kind id of each changed asset; `names`: (name, model) per new kind id.
    """
    gone = sorted(a for a, r in changed.items() if r is None)
    for chunk in chunks(conn, gone):
        conn.execute(delete(availability).where(in_values(conn, availability.c.asset_id, chunk)))
    upsert(conn, availability, [r for _, r in sorted(changed.items()) if r is not None], key=("asset_id",))
    new_kinds = {r["kind_id"] for r in changed.values() if r is not None and r["kind_id"] is not None}
    kind_rows = [{"kind_id": k, "name": names[k][0], "model": names[k][1]} for k in sorted(new_kinds)]
    upsert(conn, kinds, kind_rows, key=("kind_id",), update=False)
    dropped = sorted(
        {k for a, k in before.items() if k is not None and (changed[a] or {}).get("kind_id") != k}
    )
    unused = ~exists().where(availability.c.kind_id == kinds.c.kind_id)
    for chunk in chunks(conn, dropped):
        conn.execute(delete(kinds).where(in_values(conn, kinds.c.kind_id, chunk), unused))


def _effective(today: date) -> ColumnElement[str]:
    """The class as of `today`: a ready device whose calibration expired before it is due."""
    a = availability.c
    expired = and_(a.availability == READY, a.ready_until.is_not(None), a.ready_until < today)
    return case((expired, CALIBRATION_DUE), else_=a.availability)


def _filters(conn: Connection, device_type: str | None, category: str | None) -> list[Any] | None:
    """WHERE clauses for a type and/or category; None when no kind matches the type."""
    where: list[Any] = []
    if device_type is not None:
        needle = device_type.lower()
        matching = list(
            conn.execute(
                select(kinds.c.kind_id).where(
                    or_(
                        func.lower(kinds.c.name).contains(needle, autoescape=True),
                        func.lower(kinds.c.model).contains(needle, autoescape=True),
                    )
                )
            ).scalars()
        )
        if not matching:
            return None
        where.append(availability.c.kind_id.in_(matching))
    if category is not None:
        where.append(availability.c.category_code == category)
    return where


def summary(
    conn: Connection, *, device_type: str | None, category: str | None, today: date
) -> list[dict[str, Any]]:
    """Per department: devices by class as of `today`, total, pool size and pool devices ready."""
    where = _filters(conn, device_type, category)
    if where is None:
        return []
    a = availability.c
    klass = _effective(today)
    query = (
        select(a.department_code, a.department_name, klass, a.pool, func.count())
        .where(*where)
        .group_by(a.department_code, a.department_name, klass, a.pool)
    )
    out: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for code, name, cls, pool, count in conn.execute(query):
        dept = out.setdefault(
            (code, name),
            {"department_code": code, "department_name": name, **dict.fromkeys(CLASSES, 0), "total": 0}
            | {"pool": 0, "pool_ready": 0},
        )
        dept[cls] += count
        dept["total"] += count
        if pool:
            dept["pool"] += count
            dept["pool_ready"] += count if cls == READY else 0
    return sorted(
        out.values(), key=lambda d: (-d[READY], d["department_code"] or "", d["department_name"] or "")
    )


def devices(
    conn: Connection,
    *,
    device_type: str | None,
    category: str | None,
    department: str | None,
    klass: str | None,
    pool: bool | None,
    today: date,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of devices (by department, then asset id) with their class as of `today`."""
    where = _filters(conn, device_type, category)
    if where is None:
        return [], 0
    a, t = availability.c, assets.c
    effective = _effective(today)
    if department is not None:
        where.append(or_(a.department_code == department, a.department_name == department))
    if klass is not None:
        where.append(effective == klass)
    if pool is not None:
        where.append(a.pool.is_(pool))
    total = conn.execute(select(func.count()).select_from(availability).where(*where)).scalar_one()
    query = (
        select(
            a.asset_id,
            t.name,
            t.model,
            a.category_code,
            a.department_code,
            a.department_name,
            t.location,
            t.status,
            effective.label("availability"),
            a.pool,
            a.ready_until,
            t.loan_borrower_code,
            t.loan_borrower_name,
            t.loan_due_at,
        )
        .join(assets, t.asset_id == a.asset_id)
        .where(*where)
        .order_by(a.department_code, a.asset_id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in conn.execute(query).mappings()], int(total)


def availability_of(conn: Connection, asset_ids: Sequence[str], today: date) -> dict[str, dict[str, Any]]:
    """Per asset id: its class as of `today`, its emergency-pool flag and the day readiness runs out."""
    if not asset_ids:
        return {}
    a = availability.c
    query = select(a.asset_id, _effective(today).label("availability"), a.pool, a.ready_until).where(
        in_values(conn, a.asset_id, list(asset_ids))
    )
    return {row["asset_id"]: dict(row) for row in conn.execute(query).mappings()}
