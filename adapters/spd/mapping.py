"""The SPD mapping: document kinds, which column is which field, and the site's code maps.

One mapping serves every SPD export (物资字典, 库存上下限, 入库单, 出库/配送单, 消耗扫码, 盘点单,
报损单): `columns` lists every field any of them uses, `documents` says how to tell the kinds apart
(adapters/_files/documents.py), and the code maps turn the export's words into canonical values:
departments (the central store 中心库房 included), the high-value flag and disposal reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import Field, PrivateAttr

from adapters._files.documents import DocumentRule, document_problems
from adapters._files.header import normalise_label
from adapters._files.mapping import FileMapping, Problem, Text
from adapters._files.mapping_loader import load_mapping_file

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

Kind = Literal["item_master", "threshold", "receipt", "distribution", "consumption", "stocktake", "disposal"]
KINDS: tuple[Kind, ...] = get_args(Kind)
DisposalReason = Literal["expired", "damaged", "recalled", "other"]

# Canonical fields of an SPD row, across all document kinds; `columns` may only name these.
SPD_FIELDS = frozenset(
    {
        "document_type", "document_no", "line_no", "document_date",
        "item_code", "name", "spec", "unit", "gtin", "udi_di", "high_value", "category", "supplier",
        "unit_price",
        "store", "department", "bin",
        "minimum", "maximum", "reorder_point", "effective_on",
        "quantity", "lot", "expiry", "serials", "barcode", "udi", "po_number",
        "received_on", "distributed_on", "consumed_at", "counted_on", "disposed_on",
        "book_quantity", "counted_quantity", "adjust_reason",
        "disposal_reason", "note", "charge_id", "procedure_code",
    }
)  # fmt: skip
# Characters that separate several serial numbers in one cell (after NFKC: `；` is `;`, `，` is `,`).
_DEFAULT_SERIAL_SEPARATORS = [";", "、", ","]
# How exports write the GS separator when they cannot hold the control character itself.
_DEFAULT_GS_ALIASES = ["<GS>", "{GS}", "[GS]", "\\x1d", "\\u001d", "␝"]


class SpdMapping(FileMapping):
    """Mapping for SPD exports. Departments are strict by default: stock in an unknown place fails."""

    known_fields: ClassVar[frozenset[str]] = SPD_FIELDS

    strict_departments: bool = True
    documents: dict[str, DocumentRule] = Field(default_factory=dict)
    default_store: Text | None = None
    high_value_words: dict[str, bool] = Field(default_factory=dict)
    disposal_reasons: dict[str, DisposalReason] = Field(default_factory=dict)
    serial_separators: list[Text] = Field(default_factory=lambda: list(_DEFAULT_SERIAL_SEPARATORS))
    barcode_gs_aliases: list[Text] = Field(default_factory=lambda: list(_DEFAULT_GS_ALIASES))

    _high_value: dict[str, bool] = PrivateAttr(default_factory=dict)
    _disposal: dict[str, DisposalReason] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        super().model_post_init(_context)
        self._high_value = {normalise_label(w): v for w, v in self.high_value_words.items()}
        self._disposal = {normalise_label(w): v for w, v in self.disposal_reasons.items()}

    @property
    def high_value_table(self) -> dict[str, bool]:
        """Normalised flag word -> high-value (是 -> True)."""
        return self._high_value

    @property
    def disposal_table(self) -> dict[str, DisposalReason]:
        """Normalised reason word -> canonical disposal reason (过期 -> expired)."""
        return self._disposal

    def problems(self) -> list[Problem]:
        return [*super().problems(), *self._spd_problems()]

    def _spd_problems(self) -> Iterator[Problem]:
        # Every SPD document is about an item: a row without its code cannot be keyed.
        if "item_code" not in self.required:
            yield ("required",), "must include item_code: the item code is the key of every SPD row"
        yield from document_problems(self.documents, kinds=KINDS, fields=SPD_FIELDS)
        if self.default_store is not None and self.department(self.default_store) is None:
            yield ("default_store",), f"{self.default_store!r} is not in departments"


def load_spd_mapping(path: Path) -> SpdMapping:
    """Load and validate an SPD mapping; `extends: default` builds on the bundled mapping.yaml."""
    return load_mapping_file(path, SpdMapping, default=DEFAULT_MAPPING)


def default_mapping() -> SpdMapping:
    """The bundled mapping, as sites without their own file use it."""
    return load_spd_mapping(DEFAULT_MAPPING)
