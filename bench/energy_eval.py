"""Detection quality against the synthetic campus's labels: precision and recall.

    python -m bench.energy_eval --weeks 12 --buildings 3 --zones 4

Readings -> interval consumption and hourly series (the read model's own pure functions) ->
the detectors over the weeks after the clean history -> episodes matched to labels. A label is
found when an episode of its kind on its series or zone overlaps its window; an episode is right
when it overlaps any label on its series or zone (a surge flagged during a labelled leak is not a
false alarm), wrong otherwise (a replacement or a rollover flagged is wrong).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bench.energy_synth import generate
from projections.energy.detect.judge import judge_series, judge_zone
from projections.energy.detect.model import DetectConfig, Episode, Series
from projections.energy.registers import hourly_totals, intervals_of
from schemas.facility import CONSUMPTION

if TYPE_CHECKING:
    from datetime import datetime

    from bench.energy_synth import Campus, Label, Row


@dataclass(frozen=True, slots=True)
class Score:
    labels: int
    found: int
    episodes: int
    right: int
    missed: tuple[Label, ...]
    false: tuple[Episode, ...]

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else 1.0

    @property
    def precision(self) -> float:
        return self.right / self.episodes if self.episodes else 1.0


def hourly_series(campus: Campus, rows: list[Row]) -> dict[str, tuple[Series, set[datetime]]]:
    """series name -> (hourly values, hours with a reading), as the read model folds them."""
    by: dict[str, list[tuple[datetime, float]]] = {}
    quantity: dict[str, str] = {}
    for meter, qty, at, value in rows:
        name = f"MTR-{meter}/{qty}"
        by.setdefault(name, []).append((at, value))
        quantity[name] = qty
    limits = {m.series: m.register_max for m in campus.meters}
    out = {}
    for name, readings in by.items():
        qty = quantity[name]
        consumption = qty in CONSUMPTION
        replaced = frozenset(at for s, at in campus.replaced if s == name)
        intervals = intervals_of(readings, kind="cumulative" if consumption else "instant",
                                 register_max=limits.get(name), replaced_at=replaced)  # fmt: skip
        totals = hourly_totals(intervals, consumption=consumption)
        values = {h: (t if consumption else t / max(n, 1)) for h, (t, n, _, _) in totals.items()}
        out[name] = (Series(name, values), {h for h, (_, n, _, _) in totals.items() if n > 0})
    return out


def detect(campus: Campus, rows: list[Row], *, clean_weeks: int, config: DetectConfig) -> list[Episode]:
    series = hourly_series(campus, rows)
    first = min(at for _, _, at, _ in rows)
    last = max(at for _, _, at, _ in rows)
    begin = (first + timedelta(weeks=clean_weeks)).replace(minute=0, second=0, microsecond=0)
    hours = []
    hour = begin
    while hour + timedelta(hours=1) <= last:
        hours.append(hour)
        hour += timedelta(hours=1)
    episodes: list[Episode] = []
    for name, (values, sampled) in sorted(series.items()):
        qty = name.rsplit("/", 1)[1]
        episodes += judge_series(values, sampled, hours, config, consumption=qty in CONSUMPTION)
    for zone, _, _ in campus.hvac_zones:
        heat = series[f"MTR-{zone}-HV/heating_valve_pct"][0]
        cool = series[f"MTR-{zone}-CV/cooling_valve_pct"][0]
        episodes += judge_zone(zone, heat, cool, hours, config)
    return episodes


def score(labels: list[Label], episodes: list[Episode]) -> Score:
    def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
        return a_start < b_end and b_start < a_end

    def matches(e: Episode, lb: Label) -> bool:
        return (e.kind, e.scope) == (lb.kind, lb.scope) and overlaps(e.start, e.end, lb.start, lb.end)

    found = [lb for lb in labels if any(matches(e, lb) for e in episodes)]
    right = [e for e in episodes if any(
        e.scope == lb.scope and overlaps(e.start, e.end, lb.start, lb.end) for lb in labels
    )]  # fmt: skip
    return Score(
        labels=len(labels),
        found=len(found),
        episodes=len(episodes),
        right=len(right),
        missed=tuple(lb for lb in labels if lb not in found),
        false=tuple(e for e in episodes if e not in right),
    )


def evaluate(
    *,
    weeks: int,
    buildings: int,
    zones: int,
    per_kind: int,
    seed: int,
    clean_weeks: int = 4,
    noise: float = 0.04,
    strength: tuple[float, float] = (2.5, 4.0),
) -> Score:
    campus, rows = generate(weeks=weeks, buildings=buildings, zones=zones, per_kind=per_kind, seed=seed,
                            clean_weeks=clean_weeks, noise=noise, strength=strength)  # fmt: skip
    return score(campus.labels, detect(campus, rows, clean_weeks=clean_weeks, config=DetectConfig()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--buildings", type=int, default=3)
    parser.add_argument("--zones", type=int, default=4)
    parser.add_argument("--per-kind", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=0.04, help="per-reading noise (standard deviation)")
    parser.add_argument("--strength", type=float, nargs=2, default=(2.5, 4.0), help="injected strength range")
    args = parser.parse_args()
    result = evaluate(weeks=args.weeks, buildings=args.buildings, zones=args.zones, per_kind=args.per_kind,
                      seed=args.seed, noise=args.noise, strength=tuple(args.strength))  # fmt: skip
    print(f"labels {result.labels}, found {result.found}: recall {result.recall:.3f}")
    print(f"episodes {result.episodes}, right {result.right}: precision {result.precision:.3f}")
    for label in result.missed:
        print("missed", label)
    for episode in result.false:
        print("false", episode.kind, episode.scope, episode.start, episode.reason)


if __name__ == "__main__":
    main()
