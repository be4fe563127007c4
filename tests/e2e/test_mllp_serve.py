"""HL7 v2 over MLLP against a running `hub serve`, as a HIS interface engine would talk to it.

Each message gets the right MSA-1: AA stored, AE dead-lettered (with ERR; also an unreadable one,
which is stored and dead-lettered), AR only when the archive cannot commit; an
exact resend gets its first ACK back and creates nothing; the same MSH-10 with other content is
a conflict. No patient name or identifier appears in any event, dead letter, log line or metric.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from adapters.his.decode import decode
from adapters.his.mllp import MllpFramer, frame
from adapters.his.tokenize import tokenise
from hub.bus.embedded import EmbeddedBus
from tests.e2e.conftest import REPO, Served

HIS = REPO / "examples" / "his"
pytestmark = pytest.mark.slow


async def exchange(port: int, payloads: list[bytes]) -> list[bytes]:
    """Send frames on one connection, in order, and read one ACK per frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = MllpFramer()
    acks: list[bytes] = []
    for payload in payloads:
        writer.write(frame(payload))
        await writer.drain()
        while not (got := framer.feed(await asyncio.wait_for(reader.read(65536), timeout=30))):
            pass
        acks += got
    writer.close()
    await writer.wait_closed()
    return acks


def msa(ack: bytes) -> list[str]:
    text = decode(ack).text
    line = next(seg for seg in text.replace("\n", "\r").split("\r") if seg.startswith("MSA"))
    return line.split("|")


def patient_strings(paths: list[Path]) -> set[str]:
    """PID-3 identifiers, PID-5 names and PID-7 birth dates of the sample messages."""
    out: set[str] = set()
    for path in paths:
        decoded = decode(path.read_bytes())
        msg = tokenise(decoded.text, decoded.encoding)
        for seg in msg.segments("PID"):
            for n in (3, 5, 7):
                for part in seg.field(n).replace("~", "^").split("^"):
                    if len(part) >= 3:
                        out.add(part)
    return out


def canonical_values(data_dir: Path) -> list[str]:
    async def read() -> list[str]:
        bus = EmbeddedBus(data_dir / "bus.db")
        await bus.start()
        reader = await bus.consumer(
            ["canonical.inventory.v1", "canonical.asset.v1", "dlq.his.v1"], group=None
        )
        out: list[str] = []
        while batch := await reader.poll(max_records=1000, timeout_s=0.3):
            out += [r.value.decode() for r in batch]
        await reader.close()
        await bus.close()
        return out

    return asyncio.run(read())


def test_mllp_conversation_against_hub_serve(served: Served) -> None:
    """GBK and UTF-8 messages, a resend, a conflicting resend, a malformed and an untranslatable one."""
    utf8 = (HIS / "01_dft_p03_ptca_prt_utf8.hl7").read_bytes().replace(b"\n", b"\r")
    gbk = (HIS / "02_dft_p03_pacemaker_gbk.hl7").read_bytes()
    bad_state = (HIS / "09_esu_u01_unknown_state.hl7").read_bytes().replace(b"\n", b"\r")
    malformed = (HIS / "13_malformed_no_msh.hl7").read_bytes()
    conflicting = utf8.replace(b"2680.00|2680.00", b"2690.00|2690.00")
    assert conflicting != utf8

    served.start()
    acks = asyncio.run(exchange(served.mllp_port, [utf8, gbk, utf8, conflicting, bad_state, malformed]))
    first, gbk_ack, _resend, conflict, bad, nak = (msa(a) for a in acks)
    assert first[1:3] == ["AA", "DFT20240612001"]
    assert gbk_ack[1] == "AA"
    assert acks[2] == acks[0], "an exact resend gets the very ACK the first copy got"
    assert conflict[1] == "AE"
    assert bad[1] == "AE"
    assert b"ERR" in acks[4]
    assert b"EQU" in acks[4]
    assert nak[1] == "AE", "unreadable but stored and dead-lettered: AE (AR only when not stored)"
    assert acks[1].split(b"\r")[0].endswith(b"|GBK"), "the ACK echoes MSH-18 and is encoded like the message"

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the translator worker has been through every message
        with sqlite3.connect(served.data_dir / "archive.db") as db:
            pending = db.execute("SELECT count(*) FROM raw_messages WHERE status = 'pending'").fetchone()[0]
        if pending == 0:
            break
        time.sleep(0.3)
    metrics = httpx.get(f"{served.url}/metrics", timeout=5).text
    served.stop()

    archive = sqlite3.connect(served.data_dir / "archive.db")
    received = archive.execute(
        "SELECT count(*), sum(resends) FROM raw_messages WHERE system='his'"
    ).fetchone()
    letters = archive.execute(
        "SELECT code, reason, location, excerpt FROM dead_letters WHERE system='his'"
    ).fetchall()
    archive.close()
    assert received == (5, 1)  # the resend created nothing new
    assert sorted(code for code, *_ in letters) == ["conflict", "malformed", "unknown_code"]
    unknown = next(json.loads(loc) for code, _, loc, _ in letters if code == "unknown_code")
    assert unknown == {"line": 2, "field": "EQU-3", "segment": "EQU"}

    values = canonical_values(served.data_dir)
    consumed = [json.loads(v) for v in values if '"inventory.consumed"' in v]
    assert len(consumed) == 3  # 2 from the UTF-8 charge, 1 from the GBK one; none from the conflict
    assert all(c["payload"]["patient_token"].startswith("pt_") for c in consumed)

    secrets = patient_strings([HIS / "01_dft_p03_ptca_prt_utf8.hl7", HIS / "02_dft_p03_pacemaker_gbk.hl7"])
    assert {"王小明", "MR20240001"} <= secrets
    haystacks = [
        *values,
        *(json.dumps(list(row), ensure_ascii=False) for row in letters),
        served.log.read_text(),
        metrics,
    ]
    for secret in secrets:
        assert not any(secret in h for h in haystacks), f"patient data {secret!r} leaked"
