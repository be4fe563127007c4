"""The HRP mapping: which columns are which field, how to tell document kinds apart, code maps.

One mapping serves every HRP export: the fixed-asset ledger (固定资产台账) and the asset documents
(调拨单, 验收单, 启用, 报废/处置单, 折旧明细, 维保合同/保修, 计量/校准证书). `columns` lists every
field any of them uses; `documents` says how each kind is recognised (adapters/_files/documents.py);
a file no sign identifies is a ledger, as every HRP export was before the documents existed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import Field, PrivateAttr

from adapters._files.documents import DocumentRule, document_problems
from adapters._files.header import normalise_label
from adapters._files.mapping import FileMapping, Problem
from adapters._files.mapping_loader import load_mapping_file
from schemas.assets import AssetStatus  # noqa: TC001 - pydantic reads it at runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

Kind = Literal[
    "ledger", "transfer", "acceptance", "commissioning", "disposal", "depreciation", "contract", "calibration"
]
KINDS: tuple[Kind, ...] = get_args(Kind)
AcceptanceResult = Literal["passed", "failed", "conditional"]
CalibrationResult = Literal["passed", "failed", "limited"]
ContractKind = Literal["service", "warranty", "lease", "other"]

# Canonical fields of the asset documents (beside the ledger's below).
DOCUMENT_FIELDS = frozenset(
    {
        "document_type", "document_no", "document_date", "reason",
        "from_department", "to_department", "from_location", "transferred_on",
        "accepted_on", "acceptance_result", "accepted_by", "commissioned_on",
        "decommissioned_on", "disposal_method",
        "period", "depreciation_method",
        "contract_no", "contract_kind", "vendor", "signed_on", "starts_on", "ends_on", "contract_term",
        "amount",
        "certificate_no", "calibrated_on", "valid_until", "calibration_result", "provider",
    }
)  # fmt: skip

# Canonical fields of a ledger row; with the document fields, all `columns` may name.
LEDGER_FIELDS = frozenset(
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
HRP_FIELDS = LEDGER_FIELDS | DOCUMENT_FIELDS


class HrpMapping(FileMapping):
    """Mapping for HRP exports.

    `statuses` maps the ledger's status words to AssetStatus; `acceptance_results`,
    `calibration_results` and `contract_kinds` map the documents' words to canonical values (an
    unknown word fails the row, naming it).
    """

    known_fields: ClassVar[frozenset[str]] = HRP_FIELDS

    statuses: dict[str, AssetStatus] = Field(default_factory=dict)
    documents: dict[str, DocumentRule] = Field(default_factory=dict)
    acceptance_results: dict[str, AcceptanceResult] = Field(default_factory=dict)
    calibration_results: dict[str, CalibrationResult] = Field(default_factory=dict)
    contract_kinds: dict[str, ContractKind] = Field(default_factory=dict)
    default_contract_kind: ContractKind | None = None

    _statuses: dict[str, AssetStatus] = PrivateAttr(default_factory=dict)
    _acceptance: dict[str, AcceptanceResult] = PrivateAttr(default_factory=dict)
    _calibration: dict[str, CalibrationResult] = PrivateAttr(default_factory=dict)
    _contracts: dict[str, ContractKind] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        super().model_post_init(_context)
        self._statuses = {normalise_label(text): status for text, status in self.statuses.items()}
        self._acceptance = {normalise_label(w): v for w, v in self.acceptance_results.items()}
        self._calibration = {normalise_label(w): v for w, v in self.calibration_results.items()}
        self._contracts = {normalise_label(w): v for w, v in self.contract_kinds.items()}

    def status(self, text: str) -> AssetStatus | None:
        """The harmonised status for a ledger's status word, or None when the mapping lacks it."""
        return self._statuses.get(normalise_label(text))

    @property
    def acceptance_table(self) -> dict[str, AcceptanceResult]:
        """Normalised acceptance word -> result (合格 -> passed)."""
        return self._acceptance

    @property
    def calibration_table(self) -> dict[str, CalibrationResult]:
        """Normalised certificate conclusion -> result (限用 -> limited)."""
        return self._calibration

    @property
    def contract_table(self) -> dict[str, ContractKind]:
        """Normalised contract type word -> kind (保修 -> warranty)."""
        return self._contracts

    def problems(self) -> list[Problem]:
        return [*super().problems(), *self._key_problems()]

    def _key_problems(self) -> Iterator[Problem]:
        # The card number is the asset's key: a mapping that lets it be blank cannot be translated.
        if "card_no" not in self.required:
            yield ("required",), "must include card_no: the card number is the asset's key"
        yield from document_problems(self.documents, kinds=KINDS, fields=HRP_FIELDS)


def load_hrp_mapping(path: Path) -> HrpMapping:
    """Load and validate an HRP mapping; `extends: default` builds on the bundled mapping.yaml."""
    return load_mapping_file(path, HrpMapping, default=DEFAULT_MAPPING)


def default_mapping() -> HrpMapping:
    """The bundled mapping, as sites without their own file use it."""
    return load_hrp_mapping(DEFAULT_MAPPING)
