"""The kill loop: SIGKILL `hub serve` at random moments under MLLP, file and webhook traffic; count what survived.

Four MLLP connections send distinct messages and, like an interface engine, resend a message
until it is ACKed (reconnecting while the hub is down); an HRP ledger export sits in the inbox; a
webhook subscription receives the asset events. Each cycle starts the hub, measures how long until
a message sent after the restart is translated, lets traffic run for a random moment, and kills
the hub. A last start drains everything; then the figures.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median

import httpx

from tests.e2e.ledger import write_ledger
from tests.reliability.harness import Hub, MllpSender, his_messages
from tests.reliability.receiver import Receiver, running

ASSETS = "canonical.asset.v1"
CONNECTIONS = 4


@dataclass
class Figures:
    kills: int
    seed: int
    messages_sent: int
    messages_acked: int  # distinct messages the senders hold a positive ACK for
    messages_present: int  # distinct workload messages in the raw archive
    acked_not_present: int  # must be 0: an ACKed message that is not stored was lost
    applied_twice: int  # must be 0: an event the ledger recorded twice was applied twice
    file_rows_expected: int
    file_processed: bool
    webhook_events_on_log: int
    webhook_events_lost: int  # must be 0: an asset event the receiver never accepted
    webhook_redeliveries: int  # allowed: at-least-once
    clean_stop_exit_code: int | None  # SIGTERM after the last restart: 0
    clean_stop_error_lines: list[str]  # errors or tracebacks that run logged: none
    restart_to_healthy_s: list[float] = field(default_factory=list)
    restart_to_processing_s: list[float] = field(default_factory=list)
    # The part after the API answers: what a dead member's claims used to add (about 10 s).
    healthy_to_processing_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("restart_to_healthy_s", "restart_to_processing_s", "healthy_to_processing_s"):
            values = out.pop(key)
            out[key] = {
                "median": round(median(values), 2) if values else None,
                "max": round(max(values), 2) if values else None,
                "each": [round(v, 2) for v in values],
            }
        return out


class Senders:
    """CONNECTIONS threads, each sending its share in order and resending until ACKed."""

    def __init__(self, hub: Hub, payloads: list[bytes], deadline: float) -> None:
        self.hub = hub
        self.payloads = payloads
        self.deadline = deadline
        self.acks: dict[int, str] = {}
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(c,), daemon=True) for c in range(CONNECTIONS)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=max(1.0, self.deadline - time.monotonic()))

    def _run(self, connection: int) -> None:
        sender = MllpSender(self.hub.mllp_port, timeout_s=10)
        try:
            for i in range(connection, len(self.payloads), CONNECTIONS):
                while time.monotonic() < self.deadline:
                    code = sender.send(self.payloads[i])
                    if code is not None:
                        with self.lock:
                            self.acks[i] = code
                        break
                    time.sleep(0.2)  # the hub is down: try again, as an interface engine does
        finally:
            sender.close()

    def acked(self) -> set[int]:
        with self.lock:
            return {i for i, code in self.acks.items() if code in ("AA", "AE", "CA", "CE")}


@contextmanager
def _open_connections(hub: Hub) -> Iterator[None]:
    """An idle MLLP connection and an open event stream, as a stop finds them in production."""
    mllp = socket.create_connection(("127.0.0.1", hub.mllp_port), timeout=10)
    stream = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    try:
        stream.sendall(b"GET /events/stream HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n\r\n")
        assert b"200 OK" in stream.recv(4096), "the event stream did not open"
        yield
    finally:
        mllp.close()
        stream.close()


def _subscribe(hub: Hub, receiver: Receiver) -> None:
    answer = httpx.post(
        f"{hub.url}/subscriptions", json={"url": receiver.url, "topics": [ASSETS], "types": []}, timeout=30
    )
    assert answer.status_code == 201, answer.text


def _probe(hub: Hub, started: float, tag: str) -> float:
    """Seconds from `started` until a message sent now is translated (bounded: 60 s)."""
    [payload] = his_messages(1, tag=tag)
    control_id = f"{tag}000000"
    sender = MllpSender(hub.mllp_port)
    try:
        assert sender.send(payload) is not None, "the probe got no ACK from a healthy hub"
    finally:
        sender.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if hub.status_of("his", control_id) not in (None, "pending"):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"probe {control_id} was not translated within 60 s of the restart")


def _asset_event_ids(hub: Hub) -> set[str]:
    conn = sqlite3.connect(f"file:{hub.data_dir / 'bus.db'}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT r.value FROM bus_records r JOIN bus_partitions p ON r.pos >> 40 = p.pid WHERE p.topic = ?",
            (ASSETS,),
        )
        return {str(json.loads(value)["event_id"]) for (value,) in rows}
    finally:
        conn.close()


def kill_loop(
    tmp: Path, *, kills: int, messages: int, ledger_rows: int, seed: int, limit_s: float
) -> Figures:
    rng = random.Random(seed)
    hub = Hub(tmp / "data", env={"HUB_WEBHOOK_ALLOW": '["127.0.0.1"]'})  # the receiver is local
    payloads = his_messages(messages, tag="K")
    deadline = time.monotonic() + limit_s
    healthy: list[float] = []
    last_run_log = 0
    processing: list[float] = []
    ledger = tmp / "固定资产台账_kill.csv"
    write_ledger(ledger, ledger_rows)
    with running(Receiver()) as receiver:
        started = time.monotonic()
        hub.start()
        _subscribe(hub, receiver)
        hub.drop_file("hrp", ledger)
        senders = Senders(hub, payloads, deadline)
        senders.start()
        for cycle in range(kills):
            time.sleep(rng.uniform(0.3, 3.0))  # a random moment of traffic
            hub.kill()
            last_run_log = hub.log_size()
            started = time.monotonic()
            healthy.append(hub.start())
            processing.append(_probe(hub, started, tag=f"P{cycle:02d}"))
            assert time.monotonic() < deadline, f"the kill loop ran out of time after {cycle + 1} kills"
        senders.join()
        hub.wait_drained(messages + kills + 1, timeout_s=max(30.0, deadline - time.monotonic()))
        on_log = _asset_event_ids(hub)
        wait_until = time.monotonic() + 60
        while not on_log <= set(receiver.ids()) and time.monotonic() < wait_until:
            time.sleep(0.2)
        accepted = receiver.ids()
        ids = [f"K{i:06d}" for i in range(messages)]
        present = hub.stored_ids("his") & set(ids)
        acked = {ids[i] for i in senders.acked()}
        figures = Figures(
            kills=kills,
            seed=seed,
            messages_sent=messages,
            messages_acked=len(acked),
            messages_present=len(present),
            acked_not_present=len(acked - present),
            applied_twice=hub.applied_twice(),
            file_rows_expected=ledger_rows,
            file_processed=ledger.name in hub.processed("hrp"),
            webhook_events_on_log=len(on_log),
            webhook_events_lost=len(on_log - set(accepted)),
            webhook_redeliveries=len(accepted) - len(set(accepted)),
            clean_stop_exit_code=None,
            clean_stop_error_lines=[],
            restart_to_healthy_s=healthy,
            restart_to_processing_s=processing,
            healthy_to_processing_s=[p - h for p, h in zip(processing, healthy, strict=True)],
        )
        with _open_connections(hub):  # a stop must end these itself, without a traceback
            figures.clean_stop_exit_code = hub.stop()
        figures.clean_stop_error_lines = hub.error_lines(last_run_log)
    return figures


def write_figures(figures: Figures, name: str) -> dict[str, object]:
    summary = figures.summary()
    out = Path(__file__).parent / "figures"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(f"kill loop figures ({name}): {json.dumps(summary)}")
    return summary
