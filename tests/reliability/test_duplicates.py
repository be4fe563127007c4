"""Duplicates against a running hub: an exact resend, the same message id with new content, a file renamed.

An exact resend gets its first answer back and changes no table; the same MSH-10 with other
content is a conflict (AE, dead-lettered, nothing applied); the same export dropped again under
another name is recognised by content and changes no table.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import Hub, MllpSender, his_messages, table_digests
from tests.reliability.workload import FILES

pytestmark = [pytest.mark.slow, pytest.mark.soak]


def test_exact_resend_new_content_and_renamed_file(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "data")
    messages = his_messages(6, tag="U")
    export = FILES[0]
    try:
        hub.start()
        sender = MllpSender(hub.mllp_port)
        assert [sender.send(m) for m in messages] == ["AA"] * len(messages)
        hub.drop_file("spd", export)
        hub.wait_drained(len(messages) + 1)
        before = table_digests(hub.data_dir / "readmodels.db")
        stored = hub.raw_counts()

        assert sender.send(messages[0]) == "AA"  # exact resend: the stored answer again
        changed = messages[1].replace(b"VENT-0001", b"VENT-9999")
        assert sender.send(changed) == "AE"  # same MSH-10, other content: a conflict
        sender.close()
        hub.drop_file("spd", export, name=f"again_{export.name}")
        for _ in range(300):  # bounded: 60 s for the renamed file to be taken in
            if f"again_{export.name}" in hub.processed("spd"):
                break
            time.sleep(0.2)
        assert f"again_{export.name}" in hub.processed("spd")
        hub.wait_drained(sum(stored.values()))

        assert table_digests(hub.data_dir / "readmodels.db") == before  # nothing applied again
        letters = httpx.get(f"{hub.url}/dlq", timeout=10).json()["items"]
        assert [d["code"] for d in letters if d["code"] == "conflict"] == ["conflict"]
    finally:
        hub.stop()
