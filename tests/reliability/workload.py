"""The fault suite's workload: HL7 over MLLP on several connections plus export files in the inbox."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.harness import HIS, SPD, Hub, MllpSender, his_messages

# Real samples (a charge with implants, results, an admission, an unreadable frame...) and
# generated status messages; the SPD exports feed inventory, whose alerts are derived events.
SAMPLES = sorted(p for p in HIS.glob("*.hl7"))
FILES = sorted(SPD.glob("0*.csv")) + sorted(SPD.glob("0*.xlsx"))


def messages(generated: int) -> list[bytes]:
    return [p.read_bytes() for p in SAMPLES] + his_messages(generated)


@dataclass
class Sent:
    """Per message: the ACK code the sender holds (None: not answered yet)."""

    acks: dict[int, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unanswered(self, total: int) -> list[int]:
        with self.lock:
            return [i for i in range(total) if self.acks.get(i) is None]

    def positive(self) -> set[int]:
        with self.lock:
            return {i for i, code in self.acks.items() if code in ("AA", "AE", "CA", "CE")}


def send_all(
    hub: Hub, payloads: Sequence[bytes], indices: Sequence[int], sent: Sent, connections: int = 4
) -> None:
    """Send `indices` over `connections` connections in parallel; stop a connection at its first silence."""

    def one(share: Sequence[int]) -> None:
        sender = MllpSender(hub.mllp_port)
        try:
            for i in share:
                code = sender.send(payloads[i])
                with sent.lock:
                    sent.acks[i] = code
                if code is None:
                    return  # the hub went away: the rest is resent after the restart
        finally:
            sender.close()

    threads = [threading.Thread(target=one, args=(indices[c::connections],)) for c in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def drop_files(hub: Hub, files: Sequence[Path] = FILES) -> None:
    for path in files:
        hub.drop_file("spd", path)
