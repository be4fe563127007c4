"""The committed HRP ledger samples are exactly what the committed generator writes."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from tests.unit.adapters._hrp import EXAMPLES

if TYPE_CHECKING:
    from pathlib import Path

GENERATED = (
    "固定资产台账_2024.csv",
    "固定资产台账_2024_更新.csv",
    "固定资产台账_分院_UTF8_BOM.csv",
    "设备台账_补充.xlsx",
)


def test_generator_reproduces_the_committed_samples(tmp_path: Path) -> None:
    """Running examples/generate_hrp.py again yields byte-identical sample files.

    It runs in a fresh interpreter: openpyxl picks its XML writer (lxml or the standard library)
    once, at import, and the generator must be the one to choose.
    """
    script = EXAMPLES.parent / "generate_hrp.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
