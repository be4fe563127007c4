"""The OA mapping: record kinds, which export field carries what, code maps and limits.

An OA export is a list of documents (报修单, 审批记录, 派工, 完工, 借出...). The mapping names the
field that says which kind a record is and the words that select each kind; per field, the names
the export may use (first found wins; a kind may list its own names first, e.g. 完工时间 for the
completion's time); the code maps for priority, channel and approval result; which identifier
field names the asset (HRP card number before the OA's own device number by default); and the
size limits. It reuses the file adapters' mapping model and loader, so errors name file and line.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from adapters._files.header import normalise_label
from adapters._files.mapping import FileMapping, Problem, Text
from adapters._files.mapping_loader import load_mapping_file
from schemas.work_orders import Priority  # noqa: TC001 - pydantic reads it at runtime

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

KindName = Literal[
    "request",
    "approval",
    "assignment",
    "start",
    "hold",
    "completion",
    "closure",
    "cancellation",
    "loan",
    "return",
]
KINDS: tuple[KindName, ...] = get_args(KindName)
Channel = Literal["scan", "oa", "phone", "api", "other"]
ApprovalResult = Literal["approved", "rejected"]
PartField = Literal["code", "name", "quantity", "unit_price", "cost"]
Scheme = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=40)]

# Canonical fields of an OA record; `columns` and a kind's `fields` may only name these.
OA_FIELDS = frozenset(
    {
        "kind", "doc_no", "work_order_no", "asset_no", "device_no", "time",
        "department", "symptom", "priority", "channel", "requested_by",
        "amount", "approver", "level", "result", "reason",
        "engineer", "team", "resolution", "parts", "labour_hours", "cost", "downtime_minutes",
        "closed_by", "loan_id", "borrower_department", "lender_department", "responsible_person",
        "due_at", "condition",
    }
)  # fmt: skip
# Keys of the tabular model that mean nothing for a JSON/XML export: setting one is a mistake.
_TABULAR_ONLY = ("sheet", "header", "summary_markers", "skip_markers")

V = TypeVar("V")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Model):
    """Refuse exports beyond these sizes before reading them whole (memory is the hub's, not theirs)."""

    max_bytes: int = Field(default=20_000_000, ge=1)
    max_records: int = Field(default=50_000, ge=1)
    max_depth: int = Field(default=16, ge=2, le=64)


class RecordRules(_Model):
    """Where the records sit: a JSON object's list key, or the XML element name of one record."""

    json_keys: list[Text] = Field(default_factory=lambda: ["记录", "records"], min_length=1)
    xml_tags: list[Text] = Field(default_factory=lambda: ["工单", "记录", "record"], min_length=1)


class KindRule(_Model):
    """One record kind: the kind-field values that select it, its required fields, its own names."""

    values: list[Text] = Field(min_length=1)
    required: list[str] = Field(default_factory=list)
    fields: dict[str, Annotated[list[Text], Field(min_length=1)]] = Field(default_factory=dict)


class NestedRule(_Model):
    """Records inside a record: what sits under one of `path`'s names (an object, or a list of
    objects) is a record of its own, of `kind` (None: each child's own kind field decides), with
    the parent's `inherit` fields when it does not carry them itself."""

    path: list[Text] = Field(min_length=1)
    kind: KindName | None = None
    inherit: list[str] = Field(default_factory=list)


class IdentifierRule(_Model):
    """A record field that names the asset, and the identifier scheme its value belongs to."""

    field: str
    scheme: Scheme


class CodeMap(_Model, Generic[V]):
    """Source words -> canonical values. Blank -> `default`; an unknown word fails when `strict`,
    else becomes `unknown` (or `default` when `unknown` is not set)."""

    strict: bool = True
    default: V | None = None
    unknown: V | None = None
    codes: dict[Text, V]

    _index: dict[str, V] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        self._index = {normalise_label(word): value for word, value in self.codes.items()}

    def lookup(self, word: str) -> V | None:
        """The canonical value for `word` (compared without spaces, width or case), or None."""
        return self._index.get(normalise_label(word))

    def fallback(self) -> V | None:
        """What an unknown word becomes when the map is not strict."""
        return self.unknown if self.unknown is not None else self.default


class OaMapping(FileMapping):
    """Validated mapping for OA exports (JSON, JSON Lines, XML) and the OA webhook."""

    known_fields: ClassVar[frozenset[str]] = OA_FIELDS

    limits: Limits = Field(default_factory=Limits)
    records: RecordRules = Field(default_factory=RecordRules)
    kinds: dict[KindName, KindRule]
    ignored_kinds: list[Text] = Field(default_factory=list)
    nested: list[NestedRule] = Field(default_factory=list)
    asset_identifiers: list[IdentifierRule] = Field(min_length=1)
    part_columns: dict[PartField, Annotated[list[Text], Field(min_length=1)]] = Field(default_factory=dict)
    priorities: CodeMap[Priority]
    channels: CodeMap[Channel]
    approval_results: CodeMap[ApprovalResult]
    approval_levels: dict[Text, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    # Repairs costing this much need approval. The translator does not enforce it (an approval may
    # sit in another export): the work-order read model does, and `mapping check` reports it.
    approval_threshold: Decimal = Field(default=Decimal(10_000), ge=0)

    _kinds_by_word: dict[str, KindName] = PrivateAttr(default_factory=dict)
    _ignored: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _lookups: dict[KindName, dict[str, tuple[str, ...]]] = PrivateAttr(default_factory=dict)
    _kind_labels: frozenset[str] = PrivateAttr(default_factory=frozenset)
    _parts: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _levels: dict[str, int] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        super().model_post_init(_context)
        for kind, rule in self.kinds.items():
            for word in rule.values:
                self._kinds_by_word.setdefault(normalise_label(word), kind)  # clashes: problems()
        self._ignored = frozenset(normalise_label(word) for word in self.ignored_kinds)
        self._lookups = {kind: self._field_labels(rule) for kind, rule in self.kinds.items()}
        self._kind_labels = frozenset(normalise_label(n) for n in self.columns.get("kind", []))
        self._parts = {f: tuple(normalise_label(n) for n in names) for f, names in self.part_columns.items()}
        self._levels = {normalise_label(word): level for word, level in self.approval_levels.items()}

    def _field_labels(self, rule: KindRule) -> dict[str, tuple[str, ...]]:
        """Per field, the normalised names to try in order: the kind's own, then the shared ones.

        A name the kind claims for one field is taken away from every other field for that kind,
        so `金额` can be the approval's amount while it is the completion's cost elsewhere.
        """
        claimed = {normalise_label(n): f for f, names in rule.fields.items() for n in names}
        labels: dict[str, tuple[str, ...]] = {}
        for field in OA_FIELDS:
            own = [normalise_label(n) for n in rule.fields.get(field, [])]
            shared = [
                label
                for label in (normalise_label(n) for n in self.columns.get(field, []))
                if claimed.get(label, field) == field and label not in own
            ]
            if own or shared:
                labels[field] = (*own, *shared)
        return labels

    def kind_of(self, word: str) -> KindName | Literal["ignored"] | None:
        """The kind a kind-field value selects, `ignored` for a deliberately skipped kind, else None."""
        label = normalise_label(word)
        if label in self._ignored:
            return "ignored"
        return self._kinds_by_word.get(label)

    def kind_words(self) -> list[str]:
        """Every kind-field value the mapping knows, for error messages."""
        return [word for rule in self.kinds.values() for word in rule.values]

    def labels(self, kind: KindName, field: str) -> tuple[str, ...]:
        """Normalised names under which `field` may appear in a record of `kind`."""
        return self._lookups[kind].get(field, ())

    def field_table(self, kind: KindName) -> dict[str, tuple[str, ...]]:
        """Every field's normalised names for `kind` at once (a record's reader looks up many)."""
        return self._lookups[kind]

    def kind_labels(self) -> frozenset[str]:
        """Normalised names of the kind field (the same for every kind: it selects the kind)."""
        return self._kind_labels

    def names(self, kind: KindName, field: str) -> list[str]:
        """The names as written in the mapping, for messages that say what was looked for."""
        return [*self.kinds[kind].fields.get(field, []), *self.columns.get(field, [])]

    def part_labels(self, field: PartField) -> tuple[str, ...]:
        return self._parts.get(field, ())

    def level(self, word: str) -> int | None:
        """An approval level named by a word of the site's own (科主任 -> 1), if the mapping has it."""
        return self._levels.get(normalise_label(word))

    def required_fields(self, kind: KindName) -> list[str]:
        """Fields a record of `kind` must carry: the shared `required`, then the kind's own."""
        return list(dict.fromkeys([*self.required, *self.kinds[kind].required]))

    def problems(self) -> list[Problem]:
        return [
            *super().problems(),
            *self._unused_problems(),
            *self._kind_problems(),
            *self._identifier_problems(),
            *self._code_problems(),
            *self._nested_problems(),
        ]

    def _unused_problems(self) -> Iterator[Problem]:
        for key in _TABULAR_ONLY:
            if key in self.model_fields_set:
                yield (key,), f"{key!r} applies to CSV/XLSX exports; OA exports are JSON or XML"

    def _kind_problems(self) -> Iterator[Problem]:
        if "kind" not in self.columns:
            yield ("columns",), "must name the `kind` field: it selects each record's kind"
        owner: dict[str, str] = {normalise_label(w): "ignored_kinds" for w in self.ignored_kinds}
        for kind, rule in self.kinds.items():
            for i, word in enumerate(rule.values):
                previous = owner.setdefault(normalise_label(word), kind)
                if previous != kind:
                    yield ("kinds", kind, "values", i), f"{word!r} already selects {previous}"
            yield from self._kind_field_problems(kind, rule)

    def _kind_field_problems(self, kind: KindName, rule: KindRule) -> Iterator[Problem]:
        known = ", ".join(sorted(OA_FIELDS))
        for field in rule.fields:
            if field not in OA_FIELDS:
                yield ("kinds", kind, "fields", field), f"unknown field {field!r}; known: {known}"
        seen: dict[str, str] = {}
        for field, names in rule.fields.items():
            for i, name in enumerate(names):
                previous = seen.setdefault(normalise_label(name), field)
                if previous != field:
                    yield ("kinds", kind, "fields", field, i), f"{name!r} is also listed under {previous!r}"
        for i, field in enumerate(rule.required):
            if field not in OA_FIELDS:
                yield ("kinds", kind, "required", i), f"unknown field {field!r}; known: {known}"
            elif field not in self.columns and field not in rule.fields:
                yield ("kinds", kind, "required", i), f"required field {field!r} has no names to look for"

    def _identifier_problems(self) -> Iterator[Problem]:
        for i, rule in enumerate(self.asset_identifiers):
            if rule.field not in OA_FIELDS:
                yield ("asset_identifiers", i, "field"), f"unknown field {rule.field!r}"
            elif rule.field not in self.columns:
                yield ("asset_identifiers", i, "field"), f"field {rule.field!r} has no entry under columns"

    def _nested_problems(self) -> Iterator[Problem]:
        owner: dict[str, int] = {}
        for i, rule in enumerate(self.nested):
            for j, name in enumerate(rule.path):
                previous = owner.setdefault(normalise_label(name), i)
                if previous != i:
                    yield ("nested", i, "path", j), f"{name!r} is also the path of nested rule {previous}"
            for j, field in enumerate(rule.inherit):
                if field not in OA_FIELDS:
                    yield ("nested", i, "inherit", j), f"unknown field {field!r}"
                elif field not in self.columns:
                    yield ("nested", i, "inherit", j), f"field {field!r} has no entry under columns"

    def _code_problems(self) -> Iterator[Problem]:
        if self.approval_results.default is not None:
            # A blank result read as approval would invent a decision nobody took.
            yield ("approval_results", "default"), "must not be set: a blank approval result is an error"
        for name, codes in (("priorities", self.priorities), ("channels", self.channels)):
            if not codes.codes:
                yield (name, "codes"), "must list at least one code"


def load_oa_mapping(path: Path) -> OaMapping:
    """Load and validate an OA mapping; `extends: default` builds on the bundled mapping.yaml."""
    return load_mapping_file(path, OaMapping, default=DEFAULT_MAPPING)


def default_mapping() -> OaMapping:
    """The bundled mapping, as sites without their own file use it."""
    return load_oa_mapping(DEFAULT_MAPPING)
