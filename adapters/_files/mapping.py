"""The mapping model shared by file-export adapters: columns, code maps, formats, encoding.

A mapping is the integrator's whole configuration for one source at one site. Pydantic checks
shapes; `problems()` checks what shapes cannot express (a required field without a column, one
synonym under two fields, a date format that cannot read back its own output, a department alias
claimed twice), each with the key path so the loader can name the line in the YAML file.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from adapters._files.encoding import EncodingChoice
from adapters._files.header import normalise_label
from schemas._base import Currency, DeptRef

if TYPE_CHECKING:
    from collections.abc import Iterator

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
KeyPath = tuple[str | int, ...]
Problem = tuple[KeyPath, str]

_PROBE_DATE = date(2019, 11, 23)  # day > 12 and month != day, so swapped fields are caught


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeaderRules(_Model):
    """How to find the header row: scan this many rows, need this many known columns."""

    scan_rows: int = Field(default=15, ge=1, le=200)
    min_matches: int = Field(default=3, ge=1, le=50)


class DepartmentEntry(_Model):
    """One department in the hospital's canonical code list, and the other names it goes by."""

    code: Text
    name: Text
    aliases: list[Text] = Field(default_factory=list)

    def ref(self) -> DeptRef:
        return DeptRef(code=self.code, name=self.name)


class FileMapping(_Model):
    """Validated mapping for a tabular export. Subclasses set `known_fields` and add code maps."""

    known_fields: ClassVar[frozenset[str]] = frozenset()

    encoding: EncodingChoice = "auto"
    sheet: Text | None = None
    header: HeaderRules = Field(default_factory=HeaderRules)
    columns: dict[str, Annotated[list[Text], Field(min_length=1)]]
    required: list[str] = Field(default_factory=list)
    date_formats: list[Text] = Field(default_factory=list)
    summary_markers: list[Text] = Field(default_factory=lambda: ["合计", "小计", "总计"])
    skip_markers: list[Text] = Field(default_factory=list)
    default_currency: Currency = "CNY"
    departments: list[DepartmentEntry] = Field(default_factory=list)
    strict_departments: bool = False
    extras: dict[str, Any] = Field(default_factory=dict)
    # A non-empty column no field claims: `warn` (counted, logged, shown by `hub mapping check`),
    # `error` (the file is refused naming it) or `ignore` (counted only). `ignore:` lists columns
    # (titles, or a group or sub-title of a two-row header) the hub deliberately does not read.
    unclaimed: Literal["warn", "error", "ignore"] = "warn"
    ignore: list[Text] = Field(default_factory=list)

    _version: str = PrivateAttr(default="unversioned")
    _source: str = PrivateAttr(default="<memory>")
    _departments: dict[str, DepartmentEntry] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: Any, /) -> None:
        for key, entry, _ in self._department_keys():
            self._departments.setdefault(key, entry)  # a clash is reported by problems()

    @property
    def version(self) -> str:
        """First 12 hex digits of the sha256 of the mapping file's bytes (set by the loader)."""
        return self._version

    @property
    def source(self) -> str:
        """The file the mapping was loaded from."""
        return self._source

    def stamp(self, *, version: str, source: str) -> None:
        """Record where the mapping came from; called once by the loader."""
        self._version = version
        self._source = source

    def department(self, text: str) -> DepartmentEntry | None:
        """The department whose code, name or alias is `text` (compared without spaces/width)."""
        return self._departments.get(normalise_label(text))

    def problems(self) -> list[Problem]:
        """Cross-field errors as (key path, message); empty when the mapping is consistent."""
        return [*self._column_problems(), *self._date_problems(), *self._department_problems()]

    def _column_problems(self) -> Iterator[Problem]:
        owner: dict[str, str] = {}
        for field, names in self.columns.items():
            if self.known_fields and field not in self.known_fields:
                known = ", ".join(sorted(self.known_fields))
                yield ("columns", field), f"unknown field {field!r}; known: {known}"
            for position, name in enumerate(names):
                label = normalise_label(name)
                if label in owner and owner[label] != field:
                    clash = f"synonym {name!r} is also listed under {owner[label]!r}"
                    yield ("columns", field, position), clash
                owner.setdefault(label, field)
        for position, name in enumerate(self.ignore):
            if (claimed_by := owner.get(normalise_label(name))) is not None:
                yield ("ignore", position), f"{name!r} is ignored but also a synonym of {claimed_by!r}"
        for position, field in enumerate(self.required):
            if field not in self.columns:
                yield ("required", position), f"required field {field!r} has no entry under columns"

    def _date_problems(self) -> Iterator[Problem]:
        for position, fmt in enumerate(self.date_formats):
            try:
                text = _PROBE_DATE.strftime(fmt)
                parsed = datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date
            except ValueError as exc:
                yield ("date_formats", position), f"date format {fmt!r} is not usable: {exc}"
                continue
            if parsed != _PROBE_DATE:
                yield (
                    ("date_formats", position),
                    (
                        f"date format {fmt!r} does not hold a full date "
                        "(needs day, month and year, e.g. %d.%m.%Y)"
                    ),
                )

    def _department_problems(self) -> Iterator[Problem]:
        claimed: dict[str, str] = {}
        for key, entry, path in self._department_keys():
            previous = claimed.setdefault(key, entry.code)
            if previous != entry.code:
                yield path, f"{key!r} already names department {previous}"

    def _department_keys(self) -> Iterator[tuple[str, DepartmentEntry, KeyPath]]:
        for i, entry in enumerate(self.departments):
            yield normalise_label(entry.code), entry, ("departments", i, "code")
            yield normalise_label(entry.name), entry, ("departments", i, "name")
            for j, alias in enumerate(entry.aliases):
                yield normalise_label(alias), entry, ("departments", i, "aliases", j)
