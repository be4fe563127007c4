"""The exported JSON Schemas and AsyncAPI document describe what the hub really puts on the wire."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from hub.schema_export import SSE_CHANNEL, WEBHOOK_CHANNEL, event_schema_file, export_schemas
from schemas.catalogue import EVENT_CLASSES, dump_event, latest_version
from tests.unit.schemas.conftest import PREFIX
from tests.unit.schemas.examples import example_dict, example_event
from topics.catalogue import (
    CANONICAL_TOPICS,
    CATALOGUE,
    DERIVED_TOPICS,
    DLQ_TOPICS,
    RAW_TOPICS,
    topic_for_event_type,
)

if TYPE_CHECKING:
    from pathlib import Path

EVENT_TYPES = sorted(EVENT_CLASSES)
DIALECTS = (Draft202012Validator, Draft7Validator)
SchemaOf = Callable[[str], dict[str, Any]]


def wire(event_type: str) -> Any:
    """The example event as a reader receives it: JSON bytes from dump_event, decoded."""
    return json.loads(dump_event(example_event(event_type)))


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


class TestExportedFiles:
    def test_writes_one_schema_per_event_type_plus_union_records_and_asyncapi(self, tmp_path: Path) -> None:
        """The export writes exactly the per-type schemas, the union, both record schemas, asyncapi.yaml."""
        written = export_schemas(tmp_path / "out")
        expected = {f"{t}.v{latest_version(t)}.schema.json" for t in EVENT_TYPES} | {
            "events.schema.json",
            "raw_record.v1.schema.json",
            "dead_letter.v1.schema.json",
            "asyncapi.yaml",
        }
        assert {p.name for p in written} == expected
        assert {p.name for p in (tmp_path / "out").iterdir()} == expected

    def test_relocated_file_name_carries_current_version(self) -> None:
        """asset.relocated is at v2, and its file name says so."""
        assert event_schema_file("asset.relocated") == "asset.relocated.v2.schema.json"

    def test_export_is_deterministic(self, tmp_path: Path) -> None:
        """Two exports produce byte-identical files, so the contract can be diffed in review."""
        first = {p.name: p.read_bytes() for p in export_schemas(tmp_path / "a", prefix=PREFIX)}
        second = {p.name: p.read_bytes() for p in export_schemas(tmp_path / "b", prefix=PREFIX)}
        assert first == second

    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_schema_names_itself(self, event_type: str, schema_of: SchemaOf) -> None:
        """A per-type schema declares 2020-12, an $id ending in its file name, a title with its version."""
        name = event_schema_file(event_type)
        schema = schema_of(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(":" + name)
        assert schema["title"] == f"{event_type} v{latest_version(event_type)}"

    def test_every_file_is_a_valid_schema_in_both_dialects(self, exported: Path, schema_of: SchemaOf) -> None:
        """Every exported schema passes the 2020-12 and draft-07 metaschemas (AsyncAPI reads draft-07)."""
        names = [p.name for p in exported.glob("*.schema.json")]
        assert len(names) == len(EVENT_TYPES) + 3
        for name in names:
            for dialect in DIALECTS:
                dialect.check_schema(schema_of(name))


class TestSchemasValidateEvents:
    @pytest.mark.parametrize("dialect", DIALECTS)
    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_example_validates_against_its_schema(
        self, event_type: str, dialect: type[Draft7Validator], schema_of: SchemaOf
    ) -> None:
        """A real event, serialised by dump_event, is valid against its exported schema."""
        dialect(schema_of(event_schema_file(event_type))).validate(wire(event_type))

    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_example_validates_against_union(self, event_type: str, schema_of: SchemaOf) -> None:
        """The combined events.schema.json accepts every event type."""
        Draft202012Validator(schema_of("events.schema.json")).validate(wire(event_type))

    def test_schema_rejects_another_types_event(self, schema_of: SchemaOf) -> None:
        """The asset.registered schema refuses an asset.relocated event (type is a constant)."""
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wire("asset.relocated"), schema_of(event_schema_file("asset.registered")))

    def test_union_rejects_unknown_type(self, schema_of: SchemaOf) -> None:
        """The union schema refuses an event whose type is not in the catalogue."""
        event = {**wire("asset.used"), "type": "asset.teleported"}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(event, schema_of("events.schema.json"))

    def test_schema_rejects_unknown_envelope_field(self, schema_of: SchemaOf) -> None:
        """additionalProperties is false on the envelope, as extra=forbid is on the model."""
        event = {**wire("asset.used"), "priority": "high"}
        with pytest.raises(jsonschema.ValidationError, match="priority"):
            jsonschema.validate(event, schema_of(event_schema_file("asset.used")))

    def test_schema_rejects_unknown_payload_field(self, schema_of: SchemaOf) -> None:
        """additionalProperties is false inside payloads too."""
        event = example_dict("inventory.received")
        event["payload"] = {**event["payload"], "colour": "blue"}
        with pytest.raises(jsonschema.ValidationError, match="colour"):
            jsonschema.validate(event, schema_of(event_schema_file("inventory.received")))

    def test_schema_requires_payload_fields(self, schema_of: SchemaOf) -> None:
        """A relocation without its destination is refused by the schema."""
        event = example_dict("asset.relocated")
        event["payload"] = {"reason": "调拨"}
        with pytest.raises(jsonschema.ValidationError, match="'to' is a required property"):
            jsonschema.validate(event, schema_of(event_schema_file("asset.relocated")))

    def test_relocated_schema_uses_wire_name_from(self, schema_of: SchemaOf) -> None:
        """The schema names the field `from`, as dump_event writes it, never the Python name `from_`."""
        schema = schema_of(event_schema_file("asset.relocated"))
        payload = resolve(schema, schema["properties"]["payload"]["$ref"])
        assert "from" in payload["properties"]
        assert "from_" not in payload["properties"]


class TestAsyncApi:
    def test_is_asyncapi_3(self, asyncapi: dict[str, Any]) -> None:
        """The document declares AsyncAPI 3.0.0 with a title and version."""
        assert asyncapi["asyncapi"] == "3.0.0"
        assert asyncapi["info"]["title"]
        assert asyncapi["info"]["version"]

    def test_one_channel_per_catalogue_topic_with_prefixed_address(self, asyncapi: dict[str, Any]) -> None:
        """Every catalogue topic is a channel whose address carries the deployment prefix; besides
        them, only the SSE stream and the webhooks."""
        channels = asyncapi["channels"]
        assert set(channels) == {spec.name for spec in CATALOGUE} | {SSE_CHANNEL, WEBHOOK_CHANNEL}
        for spec in CATALOGUE:
            assert channels[spec.name]["address"] == PREFIX + spec.name
            assert channels[spec.name]["description"] == spec.description

    def test_kafka_binding_states_partitions_and_retention(self, asyncapi: dict[str, Any]) -> None:
        """Each channel's Kafka binding repeats the catalogue's partitions, retention and cleanup policy."""
        for spec in CATALOGUE:
            binding = asyncapi["channels"][spec.name]["bindings"]["kafka"]
            assert binding["topic"] == PREFIX + spec.name
            assert binding["partitions"] == spec.partitions
            assert binding["topicConfiguration"] == {
                "retention.ms": int(spec.configs()["retention.ms"]),
                "cleanup.policy": [spec.configs()["cleanup.policy"]],
            }

    def test_each_event_type_in_exactly_one_channel(self, asyncapi: dict[str, Any]) -> None:
        """Every event type is a message of exactly one channel: the topic the catalogue publishes it to."""
        for event_type in EVENT_TYPES:
            holders = [name for name, ch in asyncapi["channels"].items() if event_type in ch["messages"]]
            assert holders == [topic_for_event_type(event_type).name]

    def test_raw_and_dlq_channels_carry_their_records(self, asyncapi: dict[str, Any]) -> None:
        """Raw topics carry raw_record messages and DLQ topics dead_letter messages, nothing else."""
        for spec in RAW_TOPICS:
            assert set(asyncapi["channels"][spec.name]["messages"]) == {"raw_record"}
        for spec in DLQ_TOPICS:
            assert set(asyncapi["channels"][spec.name]["messages"]) == {"dead_letter"}

    def test_message_key_binding_names_topic_key(self, asyncapi: dict[str, Any]) -> None:
        """Each event message's Kafka key binding names the key of the topic it travels on."""
        messages = asyncapi["components"]["messages"]
        for event_type in EVENT_TYPES:
            key = messages[event_type]["bindings"]["kafka"]["key"]
            assert key["type"] == "string"
            assert topic_for_event_type(event_type).key in key["description"]

    def test_message_payloads_point_at_exported_schemas(
        self, asyncapi: dict[str, Any], exported: Path
    ) -> None:
        """Every message payload references a schema file the export wrote next to the document."""
        messages = asyncapi["components"]["messages"]
        streamed = {t for spec in (*CANONICAL_TOPICS, *DERIVED_TOPICS) for t in spec.event_types}
        delivered = {f"{kind}.{t}" for kind in ("sse", "webhook") for t in streamed}
        assert set(messages) == {*EVENT_TYPES, "raw_record", "dead_letter", *delivered}
        for name, message in messages.items():
            target = message["payload"]["schema"]["$ref"]
            assert (exported / target).is_file(), name
        assert messages["asset.relocated"]["payload"]["schema"]["$ref"] == "./asset.relocated.v2.schema.json"

    def test_every_internal_reference_resolves(self, asyncapi: dict[str, Any]) -> None:
        """Each '#/...' reference (channel messages, operations) points at a node that exists."""
        internal = [r for r in refs(asyncapi) if r.startswith("#/")]
        assert internal
        for ref in internal:
            assert isinstance(resolve(asyncapi, ref), dict), ref

    def test_one_send_operation_per_channel(self, asyncapi: dict[str, Any]) -> None:
        """The hub sends on every channel, with exactly the channel's messages."""
        operations = asyncapi["operations"]
        assert len(operations) == len(asyncapi["channels"])
        for operation in operations.values():
            assert operation["action"] == "send"
            channel = operation["channel"]["$ref"].removeprefix("#/channels/")
            names = {ref["$ref"].rsplit("/", 1)[1] for ref in operation["messages"]}
            assert names == set(asyncapi["channels"][channel]["messages"])
        for spec in CATALOGUE:
            assert operations[f"publish.{spec.name}"]["channel"] == {"$ref": f"#/channels/{spec.name}"}
