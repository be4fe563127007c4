"""MappingSource: a hospital's override applies without a restart, whether it changes or first appears."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from hub.translation.registry import ADAPTERS
from hub.translation.worker import MappingSource

FIX = Path(__file__).resolve().parents[3] / "examples" / "hrp" / "mapping_fix.yaml"


def _expire(source: MappingSource) -> None:
    source._next_check = 0.0  # the once-a-second throttle is not what these tests are about


class TestMappingSource:
    def test_an_override_created_after_start_is_picked_up(self, tmp_path: Path) -> None:
        """Started with no override: the default; once <dir>/hrp.yaml exists, that file."""
        spec = ADAPTERS["hrp"]
        source = MappingSource(spec, tmp_path)
        source.current()
        assert source.path == spec.default_mapping
        shutil.copy(FIX, tmp_path / "hrp.yaml")
        _expire(source)
        source.current()
        assert source.path == tmp_path / "hrp.yaml"

    def test_a_removed_override_falls_back_to_the_default(self, tmp_path: Path) -> None:
        spec = ADAPTERS["hrp"]
        shutil.copy(FIX, tmp_path / "hrp.yaml")
        source = MappingSource(spec, tmp_path)
        first = source.current()
        (tmp_path / "hrp.yaml").unlink()
        _expire(source)
        assert source.current() is not first
        assert source.path == spec.default_mapping

    def test_an_edited_override_is_reloaded(self, tmp_path: Path) -> None:
        spec = ADAPTERS["hrp"]
        target = tmp_path / "hrp.yaml"
        shutil.copy(FIX, target)
        source = MappingSource(spec, tmp_path)
        first = source.current()
        later = time.time() + 5
        os.utime(target, (later, later))
        _expire(source)
        assert source.current() is not first
