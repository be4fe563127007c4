"""Device-log adapter: vendor service-software exports of device counters, alarms and errors.

CSV/XLSX with Chinese headers (`hub ingest devlog FILE`, `inbox/devlog/`, `POST /ingest/devlog`)
-> `asset.telemetry_recorded`. HL7 device telemetry (IHE PCD-01/04, ESU^U01) comes through the
HIS door instead (adapters/his/telemetry.py): both land on the same asset through its EUI-64.
"""

from __future__ import annotations

from adapters._files.tabular import footprint
from adapters.base import AdapterSpec
from adapters.devlog.mapping import DEFAULT_MAPPING, DevlogMapping, load_devlog_mapping
from adapters.devlog.translate import translate, translate_in_chunks
from schemas._base import SourceSystem

VERSION = "devlog/1.0.0"

ADAPTER = AdapterSpec(
    system=SourceSystem.DEVLOG,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_devlog_mapping,
    translate=translate,
    translate_chunks=translate_in_chunks,
    footprint=footprint,
)

__all__ = ["ADAPTER", "VERSION", "DevlogMapping", "load_devlog_mapping", "translate"]
