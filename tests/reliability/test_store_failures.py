"""Store failures: while a store cannot write the hub gives no positive answer for it; after recovery all drains.

- read-model database down (PostgreSQL behind a proxy the test cuts): ingest keeps answering
  (the raw archive is not the read-model database), projections wait, and catch up afterwards;
- archive disk full (a small tmpfs): no AA/CA while the archive cannot commit; the resends after
  space is freed are stored and processed once.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.reliability.harness import Hub, MllpSender, his_messages
from tests.reliability.proxy import Proxy

pytestmark = pytest.mark.slow


FIGURES = Path(__file__).parent / "figures"


def record(name: str, figures: dict[str, object]) -> None:
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / "store_failures.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**known, name: figures}, indent=2))
    print(f"store failure figures ({name}): {figures}")


def send(hub: Hub, payloads: list[bytes]) -> list[str | None]:
    sender = MllpSender(hub.mllp_port, timeout_s=20)
    try:
        return [sender.send(p) for p in payloads]
    finally:
        sender.close()


def resend_until_acked(hub: Hub, payloads: list[bytes], attempts: int = 20) -> list[str | None]:
    codes: list[str | None] = [None] * len(payloads)
    for _ in range(attempts):  # bounded
        todo = [i for i, c in enumerate(codes) if c not in ("AA", "AE")]
        if not todo:
            break
        for i, code in zip(todo, send(hub, [payloads[i] for i in todo]), strict=True):
            codes[i] = code
        time.sleep(0.5)
    return codes


def registry_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM asset_registry_assets")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.soak
def test_read_model_database_down_then_back(tmp_path: Path, pg_url: str) -> None:
    url = make_url(pg_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    hub = Hub(tmp_path / "data", env={"HUB_DB_URL": via_proxy})
    before, during = his_messages(10, tag="B"), his_messages(16, tag="D")
    try:
        hub.start()
        assert send(hub, before) == ["AA"] * len(before)
        hub.wait_drained(len(before))
        proxy.cut()
        # The archive is not the read-model database: ingest still stores and answers, also
        # after the projections met the dead database (their stages restart alone, later).
        assert send(hub, during[:8]) == ["AA"] * 8
        time.sleep(3)
        assert send(hub, during[8:]) == ["AA"] * 8
        assert hub.alive()
        proxy.restore()
        hub.wait_drained(len(before) + len(during), timeout_s=120)
        assert registry_count(pg_url) == 16  # devices 10..15 come only with the messages sent while down
        failed = sum('"stage_failed"' in line for line in hub.error_lines())
        record("read_model_db_down", {"acked_while_down": len(during), "stage_restarts": failed})
    finally:
        hub.stop()
        proxy.close()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("archive disk full needs mount(8) for a small tmpfs")
    made = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"archive disk full needs a tmpfs mount (root): {made.stderr.decode(errors='replace')}")
    try:
        yield
    finally:
        subprocess.run([umount, "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> Path:
    """Write zeros until the file system is full; return the filler to delete for recovery."""
    filler = path / "filler.bin"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        chunk = b"\0" * (1 << 20)
        for _ in range(10_000):  # bounded: the tmpfs is far smaller
            out.write(chunk)
            out.flush()
    with contextlib.suppress(OSError), filler.open("ab") as out:  # the last partial chunk
        for _ in range(1 << 20):
            out.write(b"\0" * 4096)
            out.flush()
    return filler


@pytest.mark.soak
def test_archive_disk_full_gives_no_positive_ack_and_resends_drain(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    with tmpfs(mnt, "48m"):
        hub = Hub(mnt / "data", log_dir=tmp_path)
        before, during = his_messages(5, tag="F"), his_messages(20, tag="G")
        try:
            hub.start()
            assert send(hub, before) == ["AA"] * len(before)
            hub.wait_drained(len(before))
            filler = fill(mnt)
            codes = send(hub, during)
            assert not [c for c in codes if c in ("AA", "AE", "CA", "CE")], codes  # nothing positive
            record("archive_disk_full", {"answers_while_full": Counter(str(c) for c in codes)})
            filler.unlink()
            assert hub.alive()
            codes = resend_until_acked(hub, during)
            assert codes == ["AA"] * len(during)
            hub.wait_drained(len(before) + len(during), timeout_s=120)
            assert hub.applied_twice() == 0
        finally:
            hub.stop()
