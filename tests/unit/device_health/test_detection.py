"""Detection quality on the synthetic ventilator fleet (bench.telemetry_synth), against its labels."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bench.telemetry_eval import detect, score
from bench.telemetry_synth import generate
from projections.device_health.rules import Day, Device, Fleet, evaluate, load_rule_set

VENT = "MDC_DEV_SYS_PT_VENT_MDS"
DAY0 = date(2024, 3, 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_injected_degradations_are_found_with_recall_and_precision_aims(seed: int) -> None:
    """60 ventilators x 90 days, four kinds injected: recall >= 0.9 at precision >= 0.8 (reported)."""
    fleet = generate(60, 90, seed)
    result = score(detect(fleet), fleet.labels)
    print(f"seed {seed}: precision {result.precision:.3f} recall {result.recall:.3f} {result.by_category}")
    assert len(fleet.labels) == 32
    assert result.recall >= 0.9
    assert result.precision >= 0.8


def test_a_healthy_fleet_raises_nothing() -> None:
    """With nothing injected, the rules find (almost) nothing: no more than one false alarm in 60."""
    fleet = generate(60, 90, 11, share=0.0)
    assert not fleet.labels
    assert len(detect(fleet)) <= 1


def _days(n: int, **kwargs: object) -> tuple[Day, ...]:
    return tuple(Day(DAY0 + timedelta(days=i), **{k: v(i) for k, v in kwargs.items()}) for i in range(n))  # type: ignore[operator, arg-type]


class TestRules:
    def test_a_fading_battery_names_its_slope_and_the_allowed_fade(self) -> None:
        """Capacity losing 0.5 points a day: `battery-fade` with the slope as evidence."""
        device = Device("AST-1", VENT, _days(30, battery_pct=lambda i: 95 - 0.5 * i))
        (finding,) = evaluate(device, Fleet(), load_rule_set(), DAY0 + timedelta(days=29))
        assert finding.rule_id == "battery-fade"
        assert finding.observed == pytest.approx(-0.5)
        assert "0.50 points a day" in finding.reason

    def test_one_outlier_reading_does_not_make_a_trend(self) -> None:
        """A single bad capacity reading in a flat series raises nothing (Theil-Sen, not least squares)."""
        device = Device("AST-1", VENT, _days(30, battery_pct=lambda i: 20.0 if i == 29 else 95.0))
        findings = evaluate(device, Fleet(), load_rule_set(), DAY0 + timedelta(days=28))
        assert findings == []

    def test_the_same_error_code_on_three_days_is_a_recurrence(self) -> None:
        """E-217 on three days of two weeks fires once, keyed by the code; a one-off code does not."""
        codes = {3: ("E-217",), 6: ("E-217", "E-101"), 9: ("E-217",)}
        device = Device("AST-1", VENT, _days(14, errors=lambda i: codes.get(i, ())))
        (finding,) = evaluate(device, Fleet(), load_rule_set(), DAY0 + timedelta(days=13))
        assert (finding.rule_id, finding.key, finding.observed) == ("error-recurrence", "E-217", 3.0)
        assert finding.open_work_order

    def test_pm_overdue_counts_hours_since_the_last_pm(self) -> None:
        """2,400 h since the PM on record against a 2,000 h interval; without a PM on record, nothing."""
        days = _days(100, usage_hours=lambda i: 10000 + 24.0 * i)
        overdue = Device("AST-1", VENT, days, last_pm=DAY0)
        (finding,) = evaluate(overdue, Fleet(), load_rule_set(), DAY0 + timedelta(days=99))
        assert finding.rule_id == "pm-overdue"
        assert finding.observed == pytest.approx(2376.0)
        assert (
            evaluate(Device("AST-2", VENT, days), Fleet(), load_rule_set(), DAY0 + timedelta(days=99)) == []
        )

    def test_an_alarm_storm_stands_out_from_the_fleet(self) -> None:
        """20 alarms a day where the fleet has 2-3: `alarm-rate` with the fleet median as baseline."""
        device = Device("AST-1", VENT, _days(40, alarms=lambda i: 20 if i >= 35 else 2))
        fleet = Fleet(alarm_rates={VENT: [2.0, 2.5, 3.0, 2.2, 2.8, 20.0]})
        (finding,) = evaluate(device, fleet, load_rule_set(), DAY0 + timedelta(days=39))
        assert finding.rule_id == "alarm-rate"
        assert finding.baseline == pytest.approx(2.65)
