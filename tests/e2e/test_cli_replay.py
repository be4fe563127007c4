"""`hub replay` as an auditor drives it: history to the raw bytes, check, rebuild, as-of.

One data directory is filled once for the module (HRP ledger, a FHIR bundle, an OA repair
request, all naming the infusion pump with card ZC-2022-00011) through the real `hub ingest`.
The commands run as subprocesses of the real CLI application; it is loaded with
`import hub.cli.replay` first, because registering the module in hub/cli/__init__.py is the
lead's line (the `hub` entry point then needs nothing else).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub.bootstrap import build_hub
from hub.pipeline import drain, ingest_path
from hub.settings import BusKind, Settings
from schemas._base import Identifier
from schemas.ids import asset_id_for
from tests.e2e.conftest import REPO, hub_env, wired_hub

pytestmark = pytest.mark.slow

PUMP = asset_id_for(Identifier(scheme="hrp.card", value="ZC-2022-00011"))
OA_REQUEST = {
    "单据类型": "报修单",
    "单据号": "LC2024070500001",
    "工单号": "WX2024070999",
    "资产编号": "ZC-2022-00011",
    "设备名称": "输液泵",
    "报修科室": "重症医学科",
    "故障描述": "输液泵报警频繁",
    "紧急程度": "高",
    "报修方式": "OA",
    "报修人": "吴磊",
    "报修时间": "2024-07-05 09:00:00",
}
_LOAD = "import hub.cli.replay; from hub.cli import main; main()"


def replay(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _LOAD, "replay", *args],
        cwd=REPO,
        env=hub_env(data_dir, COLUMNS="250"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub that has ingested the HRP ledger update, a FHIR transaction bundle and one OA repair request.

    Filled in-process through the same composition root and pipeline `hub ingest` uses (one start-up
    instead of three subprocesses: what is under test here is replay, not ingest).
    """
    data = tmp_path_factory.mktemp("replay") / "hub"
    oa = data.parent / "报修推送.jsonl"
    oa.write_text(json.dumps(OA_REQUEST, ensure_ascii=False) + "\n", encoding="utf-8")
    files = (
        ("hrp", REPO / "examples" / "hrp" / "固定资产台账_2024_更新.csv"),
        ("fhir", REPO / "examples" / "fhir" / "bundle-transaction.json"),
        ("oa", oa),
    )

    async def ingest() -> None:
        settings = Settings(data_dir=data, db_url=None, bus=BusKind.EMBEDDED, topic_prefix="")
        async with build_hub(settings) as hub:
            for system, path in files:
                await ingest_path(hub, system, path)
            await drain(hub)

    asyncio.run(ingest())
    return data


async def fetch_raw(data_dir: Path, refs: list[str]) -> dict[str, httpx.Response]:
    """GET /raw/{ref} through the real wiring over the data dir the CLI wrote (keys off: admin)."""
    async with wired_hub(data_dir, settings={"auth": "off"}) as w:
        return {ref: await w.http.get(f"/raw/{ref}") for ref in refs}


class TestHistory:
    def test_an_asset_history_spans_three_systems_each_resolving_to_its_raw_bytes(
        self, data_dir: Path
    ) -> None:
        """HRP, FHIR and OA events of one pump, oldest first; every raw ref serves bytes matching their sha256."""
        done = replay("history", "asset", PUMP, "--json", data_dir=data_dir)
        assert done.returncode == 0, done.stderr
        entries = [json.loads(line) for line in done.stdout.splitlines()]
        assert {e["source_system"] for e in entries} >= {"hrp", "fhir", "oa"}
        occurred = [e["occurred_at"] for e in entries]
        assert occurred == sorted(occurred)
        assert any(e["event_type"] == "workorder.requested" and e["source_system"] == "oa" for e in entries)
        refs = sorted({e["raw_ref"] for e in entries})
        responses = asyncio.run(fetch_raw(data_dir, refs))
        for entry in entries:
            response = responses[entry["raw_ref"]]
            assert response.status_code == 200
            assert hashlib.sha256(response.content).hexdigest() == entry["raw"]["sha256"]
            assert response.headers["x-hub-raw-sha256"] == entry["raw"]["sha256"]
            assert response.headers["x-hub-raw-system"] == entry["source_system"]

    def test_the_table_names_its_sources(self, data_dir: Path) -> None:
        """Without --json, a table titled with the event count and the systems it came from."""
        done = replay("history", "asset", PUMP, data_dir=data_dir)
        assert done.returncode == 0, done.stderr
        assert f"History of asset {PUMP}" in done.stdout
        assert "fhir, hrp, oa" in done.stdout


class TestCheckAndRebuild:
    def test_a_tampered_row_is_reported_then_rebuilt_from_the_log(self, data_dir: Path) -> None:
        """rebuild --check names the altered row and exits 1 (it differed); after the swap, check exits 0."""
        conn = sqlite3.connect(data_dir / "readmodels.db")
        conn.execute("UPDATE asset_registry_assets SET model = 'tampered' WHERE asset_id = ?", (PUMP,))
        conn.commit()
        conn.close()
        rebuilt = replay("rebuild", "asset_registry", "--check", data_dir=data_dir)
        assert rebuilt.returncode == 1, rebuilt.stderr
        assert "first difference" in rebuilt.stdout
        assert PUMP in rebuilt.stdout
        assert "tampered" in rebuilt.stdout
        assert "swapped in" in rebuilt.stdout
        assert replay("check", "asset_registry", data_dir=data_dir).returncode == 0


class TestAsOf:
    def test_writes_a_new_file_and_refuses_to_overwrite_it(self, data_dir: Path) -> None:
        """as-of writes every read model to a new SQLite file with its meta table; the same path again exits 2."""
        out = data_dir.parent / "as-of-2024-06-30.db"
        done = replay("as-of", "2024-06-30", "--known-at", "now", "--out", str(out), data_dir=data_dir)
        assert done.returncode == 0, done.stderr
        conn = sqlite3.connect(out)
        meta = dict(conn.execute("SELECT key, value FROM as_of_meta").fetchall())
        pumps = conn.execute(
            "SELECT count(*) FROM asset_registry_assets WHERE asset_id = ?", (PUMP,)
        ).fetchone()
        conn.close()
        assert meta["occurred_at"] == "2024-06-30T15:59:59.999999+00:00"  # end of the day in Asia/Shanghai
        assert pumps == (1,)
        again = replay("as-of", "2024-06-30", "--out", str(out), data_dir=data_dir)
        assert again.returncode == 2
        assert "exists" in again.stderr
