"""The adapters this hub runs, by source system name. Adding an adapter = one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.hrp import ADAPTER as HRP

if TYPE_CHECKING:
    from adapters.base import AdapterSpec

ADAPTERS: dict[str, AdapterSpec] = {
    HRP.system.value: HRP,
}
