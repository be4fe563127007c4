"""SPD adapter: consumables logistics exports, CSV or XLSX.

Item master (物资字典), thresholds (上下限), receipts (入库), distributions (出库/配送), consumption
scans (消耗/计费扫码), stocktakes (盘点) and disposals (报损/报废) -> `inventory.*` events.
"""

from __future__ import annotations

from adapters._files.tabular import footprint
from adapters.base import AdapterSpec
from adapters.spd.mapping import DEFAULT_MAPPING, SpdMapping, load_spd_mapping
from adapters.spd.translate import translate, translate_in_chunks
from schemas._base import SourceSystem

VERSION = "spd/1.0.0"

# The item master is re-exported whole: only a changed definition is published again. Thresholds
# are not a snapshot type: the differ keys state by (subject, type), and one item has a threshold
# per place; a re-exported threshold re-sets the same value, which projections apply idempotently.
ADAPTER = AdapterSpec(
    system=SourceSystem.SPD,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_spd_mapping,
    translate=translate,
    translate_chunks=translate_in_chunks,
    footprint=footprint,
    snapshot_types=frozenset({"inventory.item_defined"}),
)

__all__ = ["ADAPTER", "VERSION", "SpdMapping", "load_spd_mapping", "translate"]
