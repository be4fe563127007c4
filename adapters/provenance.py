"""Where an adapter's events say they came from: the `Source` block of every event of one raw record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.envelope import Source

if TYPE_CHECKING:
    from adapters.base import TranslateContext
    from hub.ports import RawRecord
    from schemas._base import SourceSystem


def source_of(system: SourceSystem, raw: RawRecord, ctx: TranslateContext) -> Source:
    """The source of events translated from `raw`: system, site, message id, raw ref, adapter version."""
    return Source(
        system=system,
        site=ctx.site,
        message_id=raw.message_id,
        raw_ref=raw.raw_ref,
        adapter_version=ctx.adapter_version,
    )
