"""The energy read model: consumption by meter, zone, floor, building and department; anomalies."""

from projections.energy.projection import Energy, EnergyConfig

__all__ = ["Energy", "EnergyConfig"]
