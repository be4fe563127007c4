"""Fixtures for the contract tests: the exported schema directory, written once per module."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from hub.schema_export import export_schemas

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

PREFIX = "h01."


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contract")
    export_schemas(out, prefix=PREFIX)
    return out


@pytest.fixture(scope="module")
def asyncapi(exported: Path) -> dict[str, Any]:
    return yaml.safe_load((exported / "asyncapi.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schema_of(exported: Path) -> Callable[[str], dict[str, Any]]:
    """Loads one exported schema file by name."""

    def load(file_name: str) -> dict[str, Any]:
        return json.loads((exported / file_name).read_text(encoding="utf-8"))

    return load
