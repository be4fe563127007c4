"""HRP adapter: the fixed-asset ledger export (固定资产台账), CSV or XLSX, as `asset.registered`."""

from __future__ import annotations

from adapters._files.tabular import footprint
from adapters.base import AdapterSpec
from adapters.hrp.mapping import DEFAULT_MAPPING, HrpMapping, load_hrp_mapping
from adapters.hrp.translate import translate, translate_in_chunks
from schemas._base import SourceSystem

VERSION = "hrp/1.0.0"

ADAPTER = AdapterSpec(
    system=SourceSystem.HRP,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_hrp_mapping,
    translate=translate,
    translate_chunks=translate_in_chunks,
    footprint=footprint,
    snapshot_types=frozenset({"asset.registered"}),
)

__all__ = ["ADAPTER", "VERSION", "HrpMapping", "load_hrp_mapping", "translate"]
