"""The FHIR mapping and adapter spec: bundled defaults, and line-precise errors in a site's file."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from adapters.errors import MappingError
from adapters.fhir import ADAPTER, load_fhir_mapping
from adapters.fhir.mapping import DEFAULT_MAPPING
from schemas._base import DeptRef, LocationRef, SourceSystem
from schemas.assets import AssetStatus
from schemas.work_orders import Priority
from tests.unit.adapters._fhir import mapping

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fhir.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(MappingError) as caught:
        load_fhir_mapping(write(tmp_path, text))
    return str(caught.value)


class TestAdapterSpec:
    def test_spec(self) -> None:
        """The adapter is FHIR, version fhir/1.0.0, asset.registered a snapshot type, the bundled mapping."""
        assert (ADAPTER.system, ADAPTER.version, ADAPTER.snapshot_types) == (
            SourceSystem.FHIR,
            "fhir/1.0.0",
            frozenset({"asset.registered"}),
        )
        assert ADAPTER.default_mapping == DEFAULT_MAPPING
        assert ADAPTER.load_mapping(DEFAULT_MAPPING).version == mapping().version


class TestDefaultMapping:
    def test_version_is_content_hash(self) -> None:
        """The version is the first 12 hex digits of the sha256 of the file's bytes."""
        assert mapping().version == hashlib.sha256(DEFAULT_MAPPING.read_bytes()).hexdigest()[:12]

    def test_code_maps(self) -> None:
        """Device statuses, priorities and task steps map as documented."""
        m = mapping()
        assert m.device_statuses["active"] == AssetStatus.IN_USE
        assert m.availability_statuses["damaged"] == AssetStatus.UNDER_REPAIR
        assert (m.priorities["routine"], m.priorities["urgent"], m.priorities["stat"]) == (
            Priority.NORMAL, Priority.HIGH, Priority.URGENT,
        )  # fmt: skip
        assert m.task.statuses["in-progress"] == "started"
        assert m.task.statuses["draft"] == "skip"

    def test_locations(self) -> None:
        """A Location reference, display or alias resolves to its department or store."""
        m = mapping()
        icu = m.location(["Location/icu-5f"])
        assert icu is not None
        assert m.location_ref(icu) == LocationRef(
            department=DeptRef(code="0101", name="重症医学科"), location="住院部5楼ICU"
        )
        assert m.location(["nowhere", "  中心库房 "]) is not None
        assert m.store() == LocationRef(department=DeptRef(code="9001", name="中心库房"))

    def test_every_task_status_is_mapped(self) -> None:
        """Each FHIR Task status has a step in the bundled mapping."""
        assert len(mapping().task.statuses) == 12


class TestSiteMappings:
    def test_extends_default(self, tmp_path: Path) -> None:
        """A site file with `extends: default` changes only what it lists."""
        site = load_fhir_mapping(write(tmp_path, "extends: default\nstrict_locations: true\n"))
        assert site.strict_locations is True
        assert site.namespaces == mapping().namespaces

    def test_namespaces_and_the_older_identifier_systems_key(self, tmp_path: Path) -> None:
        """`namespaces:` extends the default table; a site file still using `identifier_systems:` is read."""
        text = 'extends: default\nnamespaces:\n  "urn:a": oa.no\nidentifier_systems:\n  "urn:b": his.code\n'
        site = load_fhir_mapping(write(tmp_path, text))
        assert (site.namespace_scheme("urn:a"), site.namespace_scheme("urn:b")) == ("oa.no", "his.code")
        assert site.namespace_scheme("http://hospital.example.cn/fhir/sid/hrp-card") == "hrp.card"
        assert site.namespace_scheme("urn:unlisted") is None

    def test_namespaces_and_identifier_systems_must_agree(self, tmp_path: Path) -> None:
        text = 'extends: default\nnamespaces:\n  "urn:a": oa.no\nidentifier_systems:\n  "urn:a": his.code\n'
        assert "identifier_systems" in problems(tmp_path, text)

    def test_unknown_key_names_the_line(self, tmp_path: Path) -> None:
        """An unknown key is reported with its file and line."""
        text = "extends: default\nstrict_locations: true\nlocatoins: []\n"
        assert "fhir.yaml:3: locatoins: Extra inputs are not permitted" in problems(tmp_path, text)

    def test_bad_scheme(self, tmp_path: Path) -> None:
        """An identifier scheme that is not a lower-case scheme name is refused at its line."""
        text = 'extends: default\nidentifier_systems:\n  "urn:x": HRP Card\n'
        assert "fhir.yaml:3:" in problems(tmp_path, text)

    def test_tabular_keys_are_refused(self, tmp_path: Path) -> None:
        """CSV keys such as `columns` mean nothing for FHIR and are refused with a reason."""
        text = "extends: default\ncolumns:\n  name: [名称]\n"
        assert "fhir.yaml:2: columns: 'columns' applies to CSV/XLSX exports" in problems(tmp_path, text)

    def test_location_department_must_exist(self, tmp_path: Path) -> None:
        """A location naming a department not in the code list is refused at that line."""
        text = (
            "extends: default\nlocations:\n  - {match: [Location/x], kind: department, department: '9999'}\n"
        )
        assert "fhir.yaml:3: locations[0].department: department '9999' is not in the departments list" in (
            problems(tmp_path, text)
        )

    def test_location_claimed_twice(self, tmp_path: Path) -> None:
        """One match key under two locations is refused, naming the first."""
        text = (
            "extends: default\ndefault_store: A\nlocations:\n"
            "  - {match: [A], kind: store}\n"
            "  - {match: [B, a], kind: store}\n"
        )
        assert "locations[1].match[1]: 'a' already matches locations[0]" in problems(tmp_path, text)

    def test_default_store_must_be_a_store(self, tmp_path: Path) -> None:
        """default_store must match a location of kind store."""
        text = "extends: default\ndefault_store: Location/icu-5f\n"
        assert "default_store: 'Location/icu-5f' must match a location of kind store" in problems(
            tmp_path, text
        )

    def test_unknown_task_step(self, tmp_path: Path) -> None:
        """A task status mapped to a step the hub does not know is refused at its line."""
        text = "extends: default\ntask:\n  statuses:\n    completed: finished\n"
        assert "fhir.yaml:4: task.statuses.completed:" in problems(tmp_path, text)

    def test_unknown_fhir_status_key(self, tmp_path: Path) -> None:
        """A Task status FHIR does not have is refused as a key."""
        text = "extends: default\ntask:\n  statuses:\n    paused: on_hold\n"
        assert "task.statuses.paused" in problems(tmp_path, text)
