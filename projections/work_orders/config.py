"""The knobs of the work-order read model: SLA targets, escalation, approval threshold, costing.

Defaults (the lead wires hub settings to these; every one can be overridden):

- `sla`: per priority, the response target (requested -> first assigned or started) and the
  resolution target (requested -> first completed): urgent 30 min / 4 h, high 2 h / 24 h,
  normal 8 h / 72 h, low 24 h / 7 d.
- `escalation_multipliers` (1, 2, 4): level n is reached at target x multipliers[n-1], so
  level 1 at the target, 2 at twice it, 3 at four times.
- `exclude_on_hold` (True): time on hold pauses both SLA clocks (waiting for a vendor's part
  is not the engineer's delay).
- `approval_threshold` (10,000): repairs at or above it, in `currency`, need approval.
- `currency` (CNY): amounts in another currency are not converted; they are left out of sums
  and comparisons.
- `cost_includes_parts` (True): `completed.cost` is the repair's total, parts included (as
  OA's 维修费用 is); set False for a source that reports labour only, to add the parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING

from schemas.work_orders import Priority

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """How long a work order of one priority may take to be answered and to be resolved."""

    response: timedelta
    resolution: timedelta

    def __post_init__(self) -> None:
        if self.response <= timedelta(0) or self.resolution <= timedelta(0):
            raise ValueError("SLA targets must be positive durations")


DEFAULT_SLA: Mapping[str, SlaTarget] = MappingProxyType(
    {
        Priority.URGENT.value: SlaTarget(timedelta(minutes=30), timedelta(hours=4)),
        Priority.HIGH.value: SlaTarget(timedelta(hours=2), timedelta(hours=24)),
        Priority.NORMAL.value: SlaTarget(timedelta(hours=8), timedelta(hours=72)),
        Priority.LOW.value: SlaTarget(timedelta(hours=24), timedelta(days=7)),
    }
)


@dataclass(frozen=True, slots=True)
class WorkOrderConfig:
    """Configuration of the `work_orders` projection (see the module docstring)."""

    sla: Mapping[str, SlaTarget] = field(default_factory=lambda: DEFAULT_SLA)
    escalation_multipliers: tuple[float, ...] = (1.0, 2.0, 4.0)
    exclude_on_hold: bool = True
    approval_threshold: Decimal = Decimal(10_000)
    currency: str = "CNY"
    cost_includes_parts: bool = True

    def __post_init__(self) -> None:
        missing = {p.value for p in Priority} - set(self.sla)
        if missing:
            raise ValueError(f"SLA targets missing for priorities: {', '.join(sorted(missing))}")
        steps = self.escalation_multipliers
        if not steps or steps[0] <= 0 or any(b <= a for a, b in pairwise(steps)):
            raise ValueError("escalation multipliers must be positive and strictly increasing")

    def target(self, priority: str | None) -> SlaTarget:
        """The SLA of a priority; a work order whose request has not arrived counts as normal."""
        return self.sla[priority or Priority.NORMAL.value]
