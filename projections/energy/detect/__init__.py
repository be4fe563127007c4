"""Explainable anomaly detection over hourly series: pure functions, one concern per module.

Each detector takes hourly values (UTC hour -> consumption per hour, or mean position/temperature)
and returns `Episode`s: what, where, the window, the baseline it compared against and what it saw,
and a sentence saying so. No clock, no I/O: the projection's tick decides what to judge, these
say what is wrong with it.

- leaks: night (and weekend-night) base load above the meter's own recent nights;
- surges: an hour above the same hour of the same weekday over recent weeks (median/MAD);
- stuck: a register that stops moving while the same hours usually use something;
- gaps: hours with no reading between readings;
- hvac: heating and cooling valves of one zone open at the same time.
"""

from projections.energy.detect.model import DetectConfig, Episode, Series

__all__ = ["DetectConfig", "Episode", "Series"]
