"""BMS adapter: sub-meter readings from building management systems.

CSV/XLSX exports with Chinese headers (cumulative registers or interval usage, per building,
floor, zone and meter), gateway pushes (JSON to `POST /ingest/bms`) and Modbus TCP polls
(adapters/bms/modbus.py, which posts the same JSON) -> `facility.meter_read`.
"""

from __future__ import annotations

from adapters._files.tabular import footprint
from adapters.base import AdapterSpec
from adapters.bms.mapping import DEFAULT_MAPPING, BmsMapping, load_bms_mapping
from adapters.bms.translate import translate, translate_in_chunks
from schemas._base import SourceSystem

VERSION = "bms/1.0.0"

ADAPTER = AdapterSpec(
    system=SourceSystem.BMS,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_bms_mapping,
    translate=translate,
    translate_chunks=translate_in_chunks,
    footprint=footprint,
)

__all__ = ["ADAPTER", "VERSION", "BmsMapping", "load_bms_mapping", "translate"]
