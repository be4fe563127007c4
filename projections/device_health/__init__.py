"""The device-health read model: device telemetry and the early warnings concluded from it."""

from projections.device_health.projection import AssetFacts, DeviceHealth, DeviceHealthConfig

__all__ = ["AssetFacts", "DeviceHealth", "DeviceHealthConfig"]
