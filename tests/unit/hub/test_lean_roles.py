"""What a process of one role loads: the projector child of `hub serve` stays lean (hub.bootstrap)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli.app import MALLOC_ARENAS, limit_malloc_arenas

REPO = Path(__file__).resolve().parents[3]
# Modules only the translators, ingest and the API need.
HEAVY = ("fastapi", "uvicorn", "openpyxl", "biip", "hub.translation.registry", "adapters.his", "hub.api.app")

PROBE = """
import asyncio, json, sys
from hub.cli import app  # every command registered, as `hub serve` has them
from hub.bootstrap import build_hub
from hub.settings import Settings

async def main() -> dict:
    async with build_hub(Settings(), roles=sys.argv[1].split(",")) as hub:
        workers = sorted(hub.workers)
    return {"workers": workers, "modules": sorted(sys.modules)}

print(json.dumps(asyncio.run(main())))
"""


def loaded(tmp_path: Path, roles: str) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(PYTHONPATH=str(REPO), HUB_DATA_DIR=str(tmp_path / "data"))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, roles],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_a_projector_hub_loads_no_translator_nor_web_stack(tmp_path: Path) -> None:
    """A hub of the project role alone builds no translator and imports no adapter nor FastAPI."""
    found = loaded(tmp_path, "project")
    assert found["workers"] == []
    assert [m for m in found["modules"] if m.startswith(HEAVY)] == []


def test_a_hub_of_every_role_still_builds_every_translator(tmp_path: Path) -> None:
    """Without the split, the hub is wired as before: a translator per adapter."""
    found = loaded(tmp_path, "ingest,translate,project,api")
    assert {"hrp", "his"} <= set(found["workers"])


def test_a_hub_loads_the_xlsx_reader_and_kafka_client_only_when_used(tmp_path: Path) -> None:
    """openpyxl (with Pillow) waits for the first XLSX file, aiokafka for a Kafka bus: a hub on the
    embedded bus that has read only CSV does not carry them (~15 MB of RSS)."""
    found = loaded(tmp_path, "ingest,translate,project,api")
    assert [m for m in found["modules"] if m.startswith(("openpyxl", "PIL", "aiokafka"))] == []


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas only")
class TestMallocArenas:
    def test_serve_limits_the_arenas_of_itself_and_its_children(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Unset, MALLOC_ARENA_MAX becomes MALLOC_ARENAS for the processes hub serve starts."""
        monkeypatch.setenv("MALLOC_ARENA_MAX", "")  # so that the test's own change is undone after it
        monkeypatch.delenv("MALLOC_ARENA_MAX")
        limit_malloc_arenas()
        assert os.environ["MALLOC_ARENA_MAX"] == str(MALLOC_ARENAS)

    def test_a_site_setting_is_kept(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A MALLOC_ARENA_MAX the site set is left as it is."""
        monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
        limit_malloc_arenas()
        assert os.environ["MALLOC_ARENA_MAX"] == "4"
