"""The committed HRP sample files are exactly what the committed generator writes."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from typing import TYPE_CHECKING

from tests.unit.adapters._hrp import EXAMPLES

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

GENERATED = (
    "固定资产台账_2024.csv",
    "固定资产台账_2024_更新.csv",
    "固定资产台账_分院_UTF8_BOM.csv",
    "设备台账_补充.xlsx",
)


def test_generator_reproduces_the_committed_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Running examples/generate_hrp.py again yields byte-identical sample files."""
    spec = importlib.util.spec_from_file_location("generate_hrp", EXAMPLES.parent / "generate_hrp.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()):
        module.main(tmp_path)
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
