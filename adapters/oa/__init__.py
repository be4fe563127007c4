"""OA adapter: repair work orders and lending between departments, from JSON/XML exports and a webhook.

Record kinds (报修单, 审批记录, 派工, 开始维修, 挂起, 完工, 验收/关闭, 撤销, 借出, 归还) become
`workorder.*` events keyed by the OA work-order number and `asset.loaned` / `asset.returned`
keyed by the asset. The webhook (`POST /ingest/oa`) hands the request body to the same
translator, with its Content-Type in `raw.metadata["content_type"]`.
"""

from __future__ import annotations

from adapters.base import AdapterSpec
from adapters.oa.mapping import DEFAULT_MAPPING, OaMapping, default_mapping, load_oa_mapping
from adapters.oa.translate import translate
from schemas._base import SourceSystem

VERSION = "oa/1.0.0"

ADAPTER = AdapterSpec(
    system=SourceSystem.OA,
    version=VERSION,
    default_mapping=DEFAULT_MAPPING,
    load_mapping=load_oa_mapping,
    translate=translate,
    snapshot_types=frozenset(),
)

__all__ = ["ADAPTER", "VERSION", "OaMapping", "default_mapping", "load_oa_mapping", "translate"]
