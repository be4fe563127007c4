"""Publish the event contract: JSON Schema per event type, the union, and an AsyncAPI 3.0.0 document.

Also the two record shapes that are not canonical events but travel on topics the outside world
can read: `RawTopicRecord` (raw.<system>.v1) and `DeadLetterRecord` (dlq.<system>.v1). They live
in `schemas.records`, where their producers (hub.ingest.rawtopic, hub.translation.deadletters)
take them from too: one model per record type. This module stays import-light: yaml, schemas and topics only.

`export_schemas` writes plain files; it never talks to a broker or a registry.
"""

from __future__ import annotations

import json
from importlib.metadata import version as distribution_version
from typing import TYPE_CHECKING, Any

import yaml

from schemas.catalogue import EVENT_ADAPTER, EVENT_CLASSES
from schemas.records import INLINE_PAYLOAD_LIMIT, DeadLetterRecord, RawTopicRecord, SourceLocation
from topics.catalogue import CATALOGUE, DLQ_TOPICS, RAW_TOPICS, TopicSpec

if TYPE_CHECKING:
    from pathlib import Path

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# AsyncAPI tools understand draft-07 schemas; the exported schemas use only keywords that mean the
# same in draft-07 and 2020-12 (tests/unit/schemas checks both dialects accept the same documents).
ASYNCAPI_SCHEMA_FORMAT = "application/schema+json;version=draft-07"
ID_BASE = "urn:hospital-integration-hub:schema:"
KAFKA_BINDING_VERSION = "0.5.0"
DISTRIBUTION = "hospital-integration-hub"

RAW_RECORD_NAME = "raw_record"
DEAD_LETTER_NAME = "dead_letter"

# The shared models, named here too for callers of the export (ErrorLocation: the old name).
ErrorLocation = SourceLocation
__all__ = [
    "INLINE_PAYLOAD_LIMIT",
    "DeadLetterRecord",
    "ErrorLocation",
    "RawTopicRecord",
    "SourceLocation",
    "asyncapi_document",
    "event_schema_file",
    "export_schemas",
]


def event_schema_file(event_type: str) -> str:
    """File name of an event type's schema at its current version."""
    return f"{event_type}.v{_version(event_type)}.schema.json"


def export_schemas(out_dir: Path, prefix: str = "") -> list[Path]:
    """Write the event contract to `out_dir` and return the files written, in a stable order.

    `prefix` is the deployment's topic prefix (HUB_TOPIC_PREFIX), used for channel addresses.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    documents: dict[str, dict[str, Any]] = {}
    for event_type, cls in sorted(EVENT_CLASSES.items()):
        documents[event_schema_file(event_type)] = _root(
            cls.model_json_schema(), event_schema_file(event_type), f"{event_type} v{_version(event_type)}"
        )
    documents["events.schema.json"] = _root(
        EVENT_ADAPTER.json_schema(), "events.schema.json", "Any canonical or derived event"
    )
    for name, model in ((RAW_RECORD_NAME, RawTopicRecord), (DEAD_LETTER_NAME, DeadLetterRecord)):
        documents[f"{name}.v1.schema.json"] = _root(
            model.model_json_schema(), f"{name}.v1.schema.json", f"{name} v1"
        )
    written = [
        _write(out_dir / name, json.dumps(doc, indent=2, ensure_ascii=False))
        for name, doc in documents.items()
    ]
    asyncapi = asyncapi_document(prefix)
    written.append(
        _write(out_dir / "asyncapi.yaml", yaml.safe_dump(asyncapi, sort_keys=False, allow_unicode=True))
    )
    return written


def asyncapi_document(prefix: str = "") -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document: one channel per catalogue topic, the hub's send operations."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in CATALOGUE:
        names = _message_names(spec)
        channels[spec.name] = {
            "address": spec.full_name(prefix),
            "title": spec.name,
            "description": spec.description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": _channel_binding(spec, prefix)},
        }
        operations[f"publish.{spec.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{spec.name}"},
            "summary": f"The hub appends to {spec.name}, keyed by {spec.key}.",
            "messages": [{"$ref": f"#/channels/{spec.name}/messages/{name}"} for name in names],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hospital integration hub events",
            "version": distribution_version(DISTRIBUTION),
            "description": (
                "Canonical events the hub publishes from HIS, HRP, OA, SPD and FHIR sources, the derived "
                "events its projections conclude, raw-message announcements and dead letters. Canonical "
                "and raw topics keep every record forever. Readers upcast older schema versions."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": _messages()},
    }


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for event_type, cls in sorted(EVENT_CLASSES.items()):
        spec = _topic_of(event_type)
        messages[event_type] = {
            "name": event_type,
            "title": f"{cls.__name__} v{_version(event_type)}",
            "summary": f"{event_type}, published on {spec.name} keyed by {spec.key}.",
            "contentType": "application/json",
            "headers": _event_headers(event_type),
            "payload": _payload_ref(event_schema_file(event_type)),
            "bindings": {"kafka": _message_binding(spec)},
        }
    for name, spec, model in (
        (RAW_RECORD_NAME, RAW_TOPICS[0], RawTopicRecord),
        (DEAD_LETTER_NAME, DLQ_TOPICS[0], DeadLetterRecord),
    ):
        messages[name] = {
            "name": name,
            "title": f"{model.__name__} v1",
            "summary": f"{name}, on every {spec.name.split('.')[0]}.<system>.v1 topic, keyed by {spec.key}.",
            "contentType": "application/json",
            "payload": _payload_ref(f"{name}.v1.schema.json"),
            "bindings": {"kafka": _message_binding(spec)},
        }
    messages[RAW_RECORD_NAME]["headers"] = _headers(
        {
            "raw_ref": {"type": "string", "description": "The record's raw_ref."},
            "system": {"type": "string", "description": "The source system (the record's system)."},
        },
        required=["raw_ref", "system"],
    )
    return messages


def _event_headers(event_type: str) -> dict[str, Any]:
    # Kafka header values are bytes; these are their UTF-8 texts. Derived events (published by the
    # projections) carry event_type and event_id only.
    return _headers(
        {
            "event_type": {"type": "string", "const": event_type},
            "event_id": {"type": "string", "description": "The envelope's event_id."},
            "schema_version": {"type": "string", "const": str(_version(event_type))},
        },
        required=["event_type", "event_id"],
    )


def _headers(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def _message_names(spec: TopicSpec) -> list[str]:
    if spec in RAW_TOPICS:
        return [RAW_RECORD_NAME]
    if spec in DLQ_TOPICS:
        return [DEAD_LETTER_NAME]
    return sorted(spec.event_types)


def _topic_of(event_type: str) -> TopicSpec:
    return next(spec for spec in CATALOGUE if event_type in spec.event_types)


def _channel_binding(spec: TopicSpec, prefix: str) -> dict[str, Any]:
    configs = spec.configs()
    return {
        "topic": spec.full_name(prefix),
        "partitions": spec.partitions,
        "topicConfiguration": {
            "retention.ms": int(configs["retention.ms"]),
            "cleanup.policy": [configs["cleanup.policy"]],
        },
        "bindingVersion": KAFKA_BINDING_VERSION,
    }


def _message_binding(spec: TopicSpec) -> dict[str, Any]:
    return {
        "key": {"type": "string", "description": f"The {spec.key}: one key's records stay in order."},
        "bindingVersion": KAFKA_BINDING_VERSION,
    }


def _payload_ref(file_name: str) -> dict[str, Any]:
    return {"schemaFormat": ASYNCAPI_SCHEMA_FORMAT, "schema": {"$ref": f"./{file_name}"}}


def _root(schema: dict[str, Any], file_name: str, title: str) -> dict[str, Any]:
    # $schema/$id/title first, so the files read well; pydantic's own title is the class name.
    return {"$schema": SCHEMA_DIALECT, "$id": ID_BASE + file_name, **schema, "title": title}


def _version(event_type: str) -> int:
    return int(EVENT_CLASSES[event_type].model_fields["schema_version"].default)


def _write(path: Path, text: str) -> Path:
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return path
