"""The HRP fixed-asset ledger mapping: which columns are which asset field, and its code maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, PrivateAttr

from adapters._files.header import normalise_label
from adapters._files.mapping import FileMapping, Problem
from adapters._files.mapping_loader import load_mapping_file
from schemas.assets import AssetStatus  # noqa: TC001 - pydantic reads it at runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

# Canonical fields of a ledger row; `columns` in a mapping may only name these.
HRP_FIELDS = frozenset(
    {
        "card_no",
        "name",
        "model",
        "manufacturer",
        "serial_number",
        "department",
        "location",
        "acquired_on",
        "original_value",
        "accumulated_depreciation",
        "net_value",
        "status",
        "category",
        "funding_source",
        "useful_life_years",
        "udi",
    }
)


class HrpMapping(FileMapping):
    """Mapping for a 固定资产台账 export; `statuses` maps the ledger's status words to AssetStatus."""

    known_fields: ClassVar[frozenset[str]] = HRP_FIELDS

    statuses: dict[str, AssetStatus] = Field(default_factory=dict)

    _statuses: dict[str, AssetStatus] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        super().model_post_init(_context)
        self._statuses = {normalise_label(text): status for text, status in self.statuses.items()}

    def status(self, text: str) -> AssetStatus | None:
        """The harmonised status for a ledger's status word, or None when the mapping lacks it."""
        return self._statuses.get(normalise_label(text))

    def problems(self) -> list[Problem]:
        return [*super().problems(), *self._key_problems()]

    def _key_problems(self) -> Iterator[Problem]:
        # The card number is the asset's key: a mapping that lets it be blank cannot be translated.
        if "card_no" not in self.required:
            yield ("required",), "must include card_no: the card number is the asset's key"


def load_hrp_mapping(path: Path) -> HrpMapping:
    """Load and validate an HRP mapping; `extends: default` builds on the bundled mapping.yaml."""
    return load_mapping_file(path, HrpMapping, default=DEFAULT_MAPPING)


def default_mapping() -> HrpMapping:
    """The bundled mapping, as sites without their own file use it."""
    return load_hrp_mapping(DEFAULT_MAPPING)
