"""`hub serve --role ingest`: the MLLP listener and the inbox run, the HTTP API does not."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from tests.e2e.conftest import REPO, free_port, hub_env

if TYPE_CHECKING:
    from pathlib import Path


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_an_ingest_process_listens_for_mllp_and_serves_no_api(tmp_path: Path) -> None:
    api, mllp = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--role", "ingest"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=hub_env(tmp_path / "hub", HUB_API_PORT=str(api), HUB_MLLP_PORT=str(mllp)),
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _accepts(mllp):
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert _accepts(mllp), log.read_text()[-3000:]
        # The roles line is printed once every stage has started, a moment after MLLP listens.
        while time.monotonic() < deadline and "roles: ingest" not in log.read_text():
            time.sleep(0.2)
        assert "roles: ingest" in log.read_text()
        assert not _accepts(api)
        assert (tmp_path / "hub" / "inbox" / "hrp").is_dir()  # the drop folders are watched
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()[-3000:]
