"""Published contracts are the real ones: every bundled example, ingested through the real hub,
produces only records that match the schemas `hub schemas export` publishes.

Every record on every catalogue topic is read back from the log and validated against the exported
JSON Schema for its topic (raw_record, dead_letter, or the event type's own schema), and the
AsyncAPI document names a message for each (topic, record kind) that appeared.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from jsonschema import Draft7Validator

from hub.bootstrap import build_hub
from hub.cli.operate import sample_files
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from hub.translation.registry import ADAPTERS
from tests.fixtures.wire import WireChecker, spec_of
from topics.catalogue import CATALOGUE, DLQ_TOPICS, RAW_TOPICS

if TYPE_CHECKING:
    from hub.ports import BusRecord

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SYSTEMS = tuple(ADAPTERS)  # every registered source: a new one is wire-checked without an edit here
PREFIX = "h01."


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> WireChecker:
    return WireChecker.exported_to(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> list[BusRecord]:
    """Every record on every catalogue topic after ingesting all bundled examples (once per module)."""
    return asyncio.run(
        ingest_examples(Settings(data_dir=tmp_path_factory.mktemp("hub"), topic_prefix=PREFIX))
    )


async def ingest_examples(settings: Settings) -> list[BusRecord]:
    async with build_hub(settings) as hub:
        for system in SYSTEMS:
            for path in sample_files(EXAMPLES, system):
                await ingest_path(hub, system, path)
        await drain(hub)
        topics = [spec.full_name(PREFIX) for spec in CATALOGUE]
        consumer = await hub.bus.consumer(topics, group=None, from_beginning=True, client_id="wire-check")
        records: list[BusRecord] = []
        try:
            for _ in range(1_000):  # bounded: the examples make a few thousand records
                batch = await consumer.poll(max_records=500, timeout_s=0.2)
                if not batch:
                    break
                records += batch
        finally:
            await consumer.close()
    return records


def kind(record: BusRecord) -> str:
    spec = spec_of(record.topic)
    assert spec is not None
    if spec in RAW_TOPICS:
        return "raw"
    if spec in DLQ_TOPICS:
        return "dlq"
    return "event"


class TestEveryExampleRecordMatchesItsSchema:
    def test_the_examples_reach_every_kind_of_topic(self, log: list[BusRecord]) -> None:
        """The check is not vacuous: raw records of every system, dead letters and events are on the log."""
        raw_systems = {r.topic.split(".")[-2] for r in log if kind(r) == "raw"}
        assert raw_systems == set(SYSTEMS)
        assert Counter(kind(r) for r in log)["dlq"] >= 5
        assert Counter(kind(r) for r in log)["event"] >= 500

    def test_every_record_validates_against_the_published_schema(
        self, log: list[BusRecord], checker: WireChecker
    ) -> None:
        """Raw records, dead letters and events alike: none breaks the schema of its topic."""
        bad = [
            f"{r.topic}[{r.partition}]@{r.offset}: {problem}"
            for r in log
            for problem in checker.problems(r.topic, r.value)
        ]
        assert bad == []

    def test_dead_letters_name_the_column_as_the_file_titles_it(
        self, log: list[BusRecord], checker: WireChecker
    ) -> None:
        """The case that drifted: file adapters put the column title in location.column, and the
        published schema accepts it (with the column's number beside it)."""
        tabular = [
            json.loads(r.value)["location"]
            for r in log
            if kind(r) == "dlq" and r.topic.split(".")[-2] in {"hrp", "spd"}
        ]
        titled = [loc for loc in tabular if isinstance(loc.get("column"), str)]
        assert titled, tabular
        assert all(isinstance(loc.get("column_index"), int) and loc["column_index"] >= 1 for loc in titled)

    def test_asyncapi_names_a_message_for_every_record_seen(
        self, log: list[BusRecord], checker: WireChecker
    ) -> None:
        """Each (topic, event type) on the log is a message of that topic's channel in asyncapi.yaml."""
        doc = yaml.safe_load((checker.schema_dir / "asyncapi.yaml").read_text(encoding="utf-8"))
        missing = set()
        for r in log:
            spec = spec_of(r.topic)
            assert spec is not None
            body = json.loads(r.value)
            name = {"raw": "raw_record", "dlq": "dead_letter"}.get(kind(r)) or body["type"]
            if name not in doc["channels"][spec.name]["messages"]:
                missing.add((spec.name, name))
        assert missing == set()

    def test_headers_match_the_asyncapi_message(self, log: list[BusRecord], checker: WireChecker) -> None:
        """The Kafka headers each record carries are the ones its AsyncAPI message declares."""
        doc = yaml.safe_load((checker.schema_dir / "asyncapi.yaml").read_text(encoding="utf-8"))
        messages = doc["components"]["messages"]
        bad = []
        for r in log:
            name = {"raw": "raw_record", "dlq": "dead_letter"}.get(kind(r)) or json.loads(r.value)["type"]
            declared = messages[name].get("headers")
            headers = {k: v.decode() for k, v in r.headers}
            if declared is None:
                if headers:
                    bad.append(f"{r.topic}@{r.offset}: undeclared headers {sorted(headers)}")
                continue
            bad += [
                f"{r.topic}@{r.offset}: {e.message}" for e in Draft7Validator(declared).iter_errors(headers)
            ]
        assert bad == []
