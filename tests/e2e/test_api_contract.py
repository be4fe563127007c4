"""The API does what its OpenAPI document says: schemathesis against `hub serve`, keys required.

Generated requests (valid and invalid) go to a real `hub serve` holding the sample exports, once
with an admin key and once with a key scoped to one department. Every check schemathesis has runs
except `positive_data_acceptance`: some valid-looking requests are refused on purpose for reasons
a schema cannot state (`from` after `to`, a FHIR resource that is not one, an unknown event type).
So: no 5xx, every status code and content type documented, every body matching its schema, no
request without a valid key served.

Bounded for the suite: the fuzzing phase, a few cases per operation, a fixed seed.
HUB_CONTRACT_PHASES (e.g. `examples,coverage,fuzzing,stateful`) and HUB_CONTRACT_EXAMPLES widen it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.conftest import REPO, Served, run_hub

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

PHASES = os.environ.get("HUB_CONTRACT_PHASES", "fuzzing")
EXAMPLES = os.environ.get("HUB_CONTRACT_EXAMPLES", "4")


def _key(data_dir: Path, *args: str) -> str:
    done = run_hub("keys", "create", *args, data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    found = re.search(r"hub_[A-Za-z0-9_-]+", done.stdout)
    assert found, done.stdout
    return found.group(0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("contract") / "data"
    keys = {
        "admin": _key(data_dir, "--role", "admin"),
        "scoped": _key(data_dir, "--role", "viewer", "--department", "重症医学科"),
    }
    for system in ("hrp", "spd", "oa", "bms", "devlog"):
        inbox = data_dir / "inbox" / system
        inbox.mkdir(parents=True, exist_ok=True)
        for sample in (REPO / "examples" / system).iterdir():
            if sample.is_file() and not sample.name.startswith(".") and sample.name != "README.txt":
                shutil.copy(sample, inbox / sample.name)
    served = Served(data_dir, HUB_AUTH="keys")
    served.start()
    try:
        yield served, keys
    finally:
        served.stop()


@pytest.mark.parametrize("who", ["admin", "scoped"])
def test_the_api_keeps_its_published_contract(server: tuple[Served, dict[str, str]], who: str) -> None:
    """schemathesis, every check but positive_data_acceptance: exit code 0, or its report."""
    served, keys = server
    assert httpx.get(f"{served.url}/openapi.json", timeout=10).status_code == 200
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{served.url}/openapi.json",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--phases", PHASES, "--max-examples", EXAMPLES, "--seed", "20261206", "--workers", "1",
        "--header", f"Authorization: Bearer {keys[who]}", "--no-color",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=served.data_dir.parent,  # its report directory lands beside the data, not in the repo
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    tested = re.search(r"Tested:\s+(\d+)", done.stdout)
    assert tested, done.stdout[-3000:]
    assert int(tested.group(1)) >= 30, done.stdout[-3000:]  # every operation, not a few
