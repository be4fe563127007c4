"""Detection quality of the device-health rules on the synthetic ventilator fleet.

    python -m bench.telemetry_eval --devices 60 --days 90

Generates the fleet (bench.telemetry_synth), folds each device's log into days the way the
read model does, evaluates the bundled rule set as of the last day, and compares the findings'
(device, category) with the injected labels: precision, recall, and per category.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass

from bench.telemetry_synth import DEVICE_TYPE, Fleet, generate
from projections.device_health.rules import Day, Device, evaluate, fleet_of, load_rule_set


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    true_positives: int
    false_positives: int
    false_negatives: int
    by_category: dict[str, tuple[int, int, int]]  # category -> (tp, fp, fn)


def devices_of(fleet: Fleet) -> list[Device]:
    days: dict[str, list[Day]] = defaultdict(list)
    for r in fleet.rows:
        days[r.eui64].append(
            Day(r.at.date(), r.usage_hours, r.power_on_cycles, r.battery_pct, r.alarms, r.errors)
        )
    return [
        Device(eui, DEVICE_TYPE, tuple(sorted(d, key=lambda x: x.day)), fleet.last_pm.get(eui))
        for eui, d in sorted(days.items())
    ]


def detect(fleet: Fleet) -> set[tuple[str, str]]:
    """(device, category) of every finding as of the fleet's last day."""
    rules = load_rule_set()
    devices = devices_of(fleet)
    today = max(d.days[-1].day for d in devices)
    peers = fleet_of(devices, rules, today)
    return {(f.subject, f.category) for d in devices for f in evaluate(d, peers, rules, today)}


def score(found: set[tuple[str, str]], labels: set[tuple[str, str]]) -> Score:
    tp, fp, fn = found & labels, found - labels, labels - found
    categories = sorted({c for _, c in found | labels})
    by = {c: tuple(sum(1 for _, k in s if k == c) for s in (tp, fp, fn)) for c in categories}
    return Score(
        precision=len(tp) / len(found) if found else 1.0,
        recall=len(tp) / len(labels) if labels else 1.0,
        true_positives=len(tp),
        false_positives=len(fp),
        false_negatives=len(fn),
        by_category=by,  # type: ignore[arg-type]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    for seed in range(1, args.seeds + 1):
        fleet = generate(args.devices, args.days, seed)
        s = score(detect(fleet), fleet.labels)
        print(
            f"seed {seed}: precision {s.precision:.3f} recall {s.recall:.3f} "
            f"(tp {s.true_positives}, fp {s.false_positives}, fn {s.false_negatives}) {s.by_category}"
        )


if __name__ == "__main__":
    main()
