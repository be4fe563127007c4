"""Named fault points (hub.faults): a crash or an exception at each risky step ends in the clean run's tables.

Each case runs `hub serve` with one point armed, sends the workload (HL7 over MLLP on four
connections, SPD exports in the inbox), lets the point fire, restarts the hub without it when it
killed the process, resends what was not answered, and compares every read-model table (volatile
columns aside) with a run that had no fault. Every sender gets an answer in the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import Hub, table_digests
from tests.reliability.workload import FILES, Sent, drop_files, messages, send_all

GENERATED = 24
PAYLOADS = messages(GENERATED)
# Each case starts `hub serve` two or three times: the whole module runs in `make soak`; the
# default suite's share of the fault suite is the fast kill loop and the in-process tests.
pytestmark = [pytest.mark.slow, pytest.mark.soak]


def run(hub: Hub, faults: str = "") -> Sent:
    """Send everything, restart after a kill, resend what was not answered, wait until drained."""
    hub.start(faults=faults)
    sent = Sent()
    drop_files(hub)
    send_all(hub, PAYLOADS, range(len(PAYLOADS)), sent)
    if faults.count(":kill"):
        assert hub.wait_exit(60), f"fault point {faults} was never reached: the test would prove nothing"
        hub.start()
    for _ in range(3):  # bounded resends
        missing = sent.unanswered(len(PAYLOADS))
        if not missing:
            break
        send_all(hub, PAYLOADS, missing, sent)
    assert sent.unanswered(len(PAYLOADS)) == []
    hub.wait_drained(len(PAYLOADS) + len(FILES))
    return sent


@dataclass(frozen=True)
class Outcome:
    digests: dict[str, tuple[int, str]]
    acks: dict[int, str | None]
    processed: set[str]  # the inbox's processed/ folder: the files and their row-error reports

    @classmethod
    def of(cls, hub: Hub, sent: Sent) -> Outcome:
        return cls(table_digests(hub.data_dir / "readmodels.db"), sent.acks, hub.processed("spd"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    hub = Hub(tmp_path_factory.mktemp("clean") / "data")
    try:
        sent = run(hub)
    finally:
        hub.stop()
    outcome = Outcome.of(hub, sent)
    assert {p.name for p in FILES} <= outcome.processed
    return outcome


def check(hub: Hub, sent: Sent, clean: Outcome) -> None:
    got = Outcome.of(hub, sent)
    assert got.acks == clean.acks  # every message answered, with the clean run's answer
    assert got.processed == clean.processed
    assert got.digests == clean.digests


KILL_POINTS = [
    pytest.param("projection.before_commit:kill:3", id="table-write-before-commit"),
    pytest.param("ingest.after_store:kill:5", id="raw-commit-before-ack", marks=pytest.mark.soak),
    pytest.param(
        "translation.before_commit:kill:2", id="publish-before-offset-commit", marks=pytest.mark.soak
    ),
    pytest.param("projection.derived_published:kill:1", id="derived-emission", marks=pytest.mark.soak),
]


@pytest.mark.parametrize("faults", KILL_POINTS)
def test_killed_at_a_fault_point_then_restarted_ends_as_a_clean_run(
    tmp_path: Path, faults: str, clean: Outcome
) -> None:
    hub = Hub(tmp_path / "data")
    try:
        sent = run(hub, faults)
        check(hub, sent, clean)
    finally:
        hub.stop()


def test_an_exception_after_the_raw_commit_closes_unanswered_and_the_resend_gets_the_stored_ack(
    tmp_path: Path, clean: Outcome
) -> None:
    hub = Hub(tmp_path / "data")
    try:
        sent = run(hub, "ingest.after_store:raise:4")
        check(hub, sent, clean)
    finally:
        hub.stop()


def test_a_translator_that_raises_dead_letters_the_message_and_a_retry_ends_as_a_clean_run(
    tmp_path: Path, clean: Outcome
) -> None:
    """The message stays stored and answered; its dead letter names the exception; a retry applies it."""
    hub = Hub(tmp_path / "data")
    try:
        run(hub, "translator.translate:raise:1")
        letters = httpx.get(f"{hub.url}/dlq", timeout=10).json()
        crashed = [d for d in letters["items"] if d["code"] == "translator_error"]
        assert len(crashed) == 1
        assert "FaultInjected" in crashed[0]["reason"]
        answer = httpx.post(f"{hub.url}/dlq/retry", params={"raw_ref": crashed[0]["raw_ref"]}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["resolved"] >= 1
        hub.wait_drained(len(PAYLOADS) + len(FILES))
        assert table_digests(hub.data_dir / "readmodels.db") == clean.digests
    finally:
        hub.stop()
