"""The suite's wire check (tests/fixtures/wire.py): it flags what breaks a published schema, and fails
the test that published it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.catalogue import dump_event
from schemas.records import DeadLetterRecord, Failure, RawTopicRecord, SourceLocation
from tests.fixtures.wire import WireChecker
from tests.unit.schemas.examples import example_event

REPO = Path(__file__).resolve().parents[3]
WHEN = datetime(2024, 3, 5, 2, 16, tzinfo=UTC)


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> WireChecker:
    return WireChecker.exported_to(tmp_path_factory.mktemp("published"))


def dead_letter(**location: object) -> bytes:
    record = DeadLetterRecord.of(
        Failure("line:4", "原值 is not an amount", "invalid_value", SourceLocation(file="a.csv", line=4)),
        dead_letter_id="dl-1",
        raw_ref="hrp:abc",
        system="hrp",
        message_id="a.csv",
        adapter_version="hrp/1",
        mapping_version="m1",
        failed_at=WHEN,
    )
    body = json.loads(record.model_dump_json())
    body["location"].update(location)
    return json.dumps(body).encode()


class TestWireChecker:
    def test_real_records_pass(self, checker: WireChecker) -> None:
        """A dead letter, a raw record and an event as the producers write them have no problem."""
        raw = RawTopicRecord.for_payload(
            b"MSH|",
            raw_ref="his:1",
            system="his",
            site="main",
            message_id="M1",
            transport="mllp",
            received_at=WHEN,
        )
        event = dump_event(example_event("asset.relocated"))
        assert checker.problems("h01.dlq.hrp.v1", dead_letter(column="原值", column_index=4)) == []
        assert checker.problems("raw.his.v1", raw.model_dump_json(exclude_none=True).encode()) == []
        assert checker.problems("canonical.asset.v1", event) == []

    def test_breaks_are_named_with_schema_and_path(self, checker: WireChecker) -> None:
        """A column given as a number, an event on the wrong topic, non-JSON: each is a problem."""
        (problem,) = checker.problems("dlq.hrp.v1", dead_letter(column=4))
        assert problem.startswith("dead_letter.v1.schema.json: location/column:")
        event = dump_event(example_event("asset.relocated"))
        assert checker.problems("canonical.inventory.v1", event) != []
        assert checker.problems("raw.his.v1", b"not json")[0].startswith("not JSON")

    def test_topics_outside_the_catalogue_are_not_checked(self, checker: WireChecker) -> None:
        """Bus contract tests publish bytes to their own topics: nothing to check there."""
        assert checker.problems("contract-3f2a", b"v") == []


INNER = """
import pytest
from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord
from topics.catalogue import DLQ_TOPICS

async def publish(tmp_path, value):
    bus = EmbeddedBus(tmp_path / "bus.db")
    await bus.start()
    await bus.ensure_topics(DLQ_TOPICS, "h01.")
    await bus.publish("h01.dlq.hrp.v1", [OutRecord(key="a.csv", value=value)])
    await bus.close()

async def test_publishes_a_broken_dead_letter(tmp_path):
    await publish(tmp_path, BROKEN)

@pytest.mark.wire_unchecked
async def test_publishes_one_on_purpose(tmp_path):
    await publish(tmp_path, BROKEN)
"""


def test_a_test_that_publishes_a_broken_record_fails_naming_topic_and_offset(tmp_path: Path) -> None:
    """Run in a pytest of its own: the unmarked test errors at teardown, the marked one passes."""
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(INNER) + f"\nBROKEN = {dead_letter(column=4)!r}\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HUB_WIRE_CHECK": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.fixtures.wire",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "2 passed, 1 error" in out, out
    assert "h01.dlq.hrp.v1[0]@0: dead_letter.v1.schema.json: location/column" in out, out
