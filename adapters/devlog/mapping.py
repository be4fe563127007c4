"""The device-log mapping: column synonyms, the vendor, models -> device types, and departments.

A vendor's device log export (one row per device and period) names the device by its EUI-64
where the device has one, else by its serial number; the serial is the vendor's, so it becomes
the `serial` identifier `<vendor>|<serial>` (the registry's manufacturer+serial) when the mapping
names the vendor, and is kept qualified (`ns`, `devlog:<file's vendor column or 'devlog'>|<serial>`)
otherwise: never a bare number that could merge with another vendor's device.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from adapters._files.mapping import FileMapping, Text
from adapters._files.mapping_loader import load_mapping_file

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

DEVLOG_FIELDS = frozenset(
    {
        "serial", "eui64", "model", "vendor", "department", "logged_at", "usage_hours", "power_on_cycles",
        "battery_pct", "battery_cycles", "alarm_count", "alarm_codes", "error_codes", "device_type",
    }
)  # fmt: skip


class DevlogMapping(FileMapping):
    """Mapping for vendor device logs (see the module docstring)."""

    known_fields: ClassVar[frozenset[str]] = DEVLOG_FIELDS

    vendor: Text | None = None  # the manufacturer, as the registry's `serial` identifiers name it
    # model (as the log writes it) -> device type: an MDC_DEV_... term, so the device-health rules
    # of that category apply; an unlisted model is its own type
    device_types: dict[Text, Text] = Field(default_factory=dict)
    code_separators: str = ";,，；/ "  # between several alarm or error codes in one cell


def load_devlog_mapping(path: Path) -> DevlogMapping:
    return load_mapping_file(path, DevlogMapping, default=DEFAULT_MAPPING)


def default_mapping() -> DevlogMapping:
    """The bundled mapping."""
    return load_devlog_mapping(DEFAULT_MAPPING)
