"""Publish the event contract: JSON Schema per event type, the union, and an AsyncAPI 3.0.0 document.

The AsyncAPI document covers the three ways events leave the hub: the Kafka (or embedded bus)
topics, the Server-Sent Events stream `GET /events/stream`, and webhook deliveries (a signed POST
to each subscription's url). `hub schemas export DIR` writes it as asyncapi.yaml beside the schema
files it references; `asyncapi_document(bundled=True)` is the self-contained JSON the API serves
at `/asyncapi.json` and the repository keeps as docs/asyncapi.json (`python -m hub.schema_export`
rewrites it).

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
from pydantic import TypeAdapter

from schemas.catalogue import EVENT_ADAPTER, EVENT_CLASSES
from schemas.records import INLINE_PAYLOAD_LIMIT, DeadLetterRecord, RawTopicRecord, SourceLocation
from topics.catalogue import CANONICAL_TOPICS, CATALOGUE, DERIVED_TOPICS, DLQ_TOPICS, RAW_TOPICS, TopicSpec

if TYPE_CHECKING:
    from pathlib import Path

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# AsyncAPI tools understand draft-07 schemas; the exported schemas use only keywords that mean the
# same in draft-07 and 2020-12 (tests/unit/schemas checks both dialects accept the same documents).
ASYNCAPI_SCHEMA_FORMAT = "application/schema+json;version=draft-07"
ID_BASE = "urn:hospital-integration-hub:schema:"
KAFKA_BINDING_VERSION = "0.5.0"
HTTP_BINDING_VERSION = "0.3.0"
DISTRIBUTION = "hospital-integration-hub"

RAW_RECORD_NAME = "raw_record"
DEAD_LETTER_NAME = "dead_letter"
SSE_CHANNEL = "events.stream"
WEBHOOK_CHANNEL = "webhooks"
SSE_PREFIX = "sse."  # message names: sse.<event type>, webhook.<event type>
WEBHOOK_PREFIX = "webhook."
COMMITTED = "docs/asyncapi.json"  # the bundled document, kept in the repository
WEBHOOK_HEADERS = "WebhookHeaders"  # components.schemas entry
USER_AGENT = "hospital-hub-webhooks/1"  # what hub.delivery.webhooks sends (a test holds them equal)

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


def asyncapi_document(prefix: str = "", *, bundled: bool = False) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document: one channel per catalogue topic, the SSE stream, webhooks.

    `bundled=False` (asyncapi.yaml): payloads reference the schema files written beside it.
    `bundled=True` (/asyncapi.json, docs/asyncapi.json): the schemas are in components.schemas,
    so the one document stands alone.
    """
    schemas, payload_of = _bundled_schemas() if bundled else ({}, _file_payloads())
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in CATALOGUE:
        names = _message_names(spec)
        channels[spec.name] = {
            "address": spec.full_name(prefix),
            "title": spec.name,
            "description": spec.description,
            "servers": [{"$ref": "#/servers/bus"}],
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": _channel_binding(spec, prefix)},
        }
        operations[f"publish.{spec.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{spec.name}"},
            "summary": f"The hub appends to {spec.name}, keyed by {spec.key}.",
            "messages": [{"$ref": f"#/channels/{spec.name}/messages/{name}"} for name in names],
        }
    delivered = _delivered_types()
    channels[SSE_CHANNEL] = _sse_channel(delivered)
    channels[WEBHOOK_CHANNEL] = _webhook_channel(delivered)
    operations[f"stream.{SSE_CHANNEL}"] = _sse_operation(delivered)
    operations[f"deliver.{WEBHOOK_CHANNEL}"] = _webhook_operation(delivered)
    messages = _messages(payload_of)
    for event_type in delivered:
        messages[SSE_PREFIX + event_type] = _sse_message(event_type, payload_of[event_type])
        messages[WEBHOOK_PREFIX + event_type] = _webhook_message(event_type, payload_of[event_type])
    components: dict[str, Any] = {
        "schemas": {**schemas, WEBHOOK_HEADERS: _WEBHOOK_HEADERS},
        "messages": messages,
        "securitySchemes": _SECURITY_SCHEMES,
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hospital integration hub events",
            "version": distribution_version(DISTRIBUTION),
            "description": (
                "Canonical events the hub publishes from HIS, HRP, OA, SPD and FHIR sources, the derived "
                "events its projections conclude, raw-message announcements and dead letters. Canonical "
                "and raw topics keep every record forever. Readers upcast older schema versions. The "
                "canonical and derived events also reach applications without a Kafka client: as "
                "Server-Sent Events from `GET /events/stream`, and as signed webhook POSTs to the url "
                "of each subscription (`POST /subscriptions`)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": _SERVERS,
        "channels": channels,
        "operations": operations,
        "components": components,
    }


Payloads = dict[str, dict[str, Any]]  # message name -> its `payload` (a multi-format schema)

_SERVERS: dict[str, Any] = {
    "bus": {
        "host": "{bootstrap}",
        "protocol": "kafka",
        "title": "The event log",
        "description": "Kafka (HUB_KAFKA_BOOTSTRAP), or the hub's embedded bus inside one process.",
        "variables": {"bootstrap": {"default": "127.0.0.1:9092", "description": "HUB_KAFKA_BOOTSTRAP"}},
    },
    "hub": {
        "host": "{host}",
        "protocol": "http",
        "title": "The hub's HTTP API",
        "description": "`hub serve` (https when a TLS-terminating proxy is in front of it).",
        "variables": {"host": {"default": "127.0.0.1:8000", "description": "Where `hub serve` listens"}},
        "security": [
            {"$ref": "#/components/securitySchemes/bearer"},
            {"$ref": "#/components/securitySchemes/apiKey"},
        ],
    },
    "subscriber": {
        "host": "{host}",
        "protocol": "http",
        "title": "A webhook receiver",
        "description": (
            "The receiver named by a subscription's url (http or https); the hub checks the target "
            "at creation and at each delivery (loopback, private and metadata addresses are refused "
            "unless HUB_WEBHOOK_ALLOW names them)."
        ),
        "variables": {"host": {"description": "Host and port of the subscription's url"}},
    },
}

_SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "hub_<key id>_<secret>",
        "description": (
            "An API key made with `hub keys create`. The event stream needs the stream permission "
            "(roles app, admin) and a key not scoped to one department."
        ),
    },
    "apiKey": {"type": "httpApiKey", "in": "header", "name": "X-API-Key", "description": "The same key"},
    "webhookSignature": {
        "type": "httpApiKey",
        "in": "header",
        "name": "X-Hub-Signature-256",
        "description": (
            "Not a key: `sha256=` + the hex HMAC-SHA256 of the exact request body, keyed by the "
            "subscription's secret (UTF-8), which `POST /subscriptions` and `rotate-secret` return "
            "once. During a rotation's overlap the header lists both signatures, the new secret's "
            "first, separated by `, `; a receiver accepts the delivery when any listed value equals "
            "its own HMAC (compare in constant time). "
            "`hub.delivery.webhooks.rules.verify_signature` is the reference implementation."
        ),
    },
}

_SIGNATURE = "sha256=[0-9a-f]{64}"
_WEBHOOK_HEADER_PROPERTIES: dict[str, Any] = {
    "Content-Type": {"type": "string", "const": "application/json"},
    "User-Agent": {"type": "string", "const": USER_AGENT},
    "X-Hub-Event-Id": {"type": "string", "description": "The event's event_id: the same on every retry."},
    "X-Hub-Delivery": {"type": "string", "format": "uuid", "description": "New for every attempt."},
    "X-Hub-Subscription": {"type": "string", "description": "The subscription's id."},
    "X-Hub-Signature-256": {
        "type": "string",
        "pattern": f"^{_SIGNATURE}(, {_SIGNATURE})*$",
        "description": "HMAC-SHA256 of the body: see the webhookSignature security scheme.",
    },
    "X-Hub-Replay": {
        "type": "string",
        "description": "Only on deliveries of a replay (POST /subscriptions/{id}/replay): its id.",
    },
    "X-Hub-Event-Type": {"type": "string", "description": "The event's type (the message's name)."},
}
_WEBHOOK_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The HTTP headers of every webhook POST (header names are case-insensitive).",
    "properties": _WEBHOOK_HEADER_PROPERTIES,
    "required": [
        "Content-Type",
        "X-Hub-Event-Type",
        "X-Hub-Event-Id",
        "X-Hub-Delivery",
        "X-Hub-Subscription",
        "X-Hub-Signature-256",
    ],
}


def _delivered_types() -> list[str]:
    """The event types on the canonical and derived topics: what SSE and webhooks deliver."""
    return sorted(t for spec in (*CANONICAL_TOPICS, *DERIVED_TOPICS) for t in spec.event_types)


def _sse_channel(delivered: list[str]) -> dict[str, Any]:
    return {
        "address": "/events/stream",
        "title": "Server-Sent Events stream",
        "servers": [{"$ref": "#/servers/hub"}],
        "description": (
            "`GET /events/stream` answers `text/event-stream`; each SSE message is one event:\n\n"
            "    id: <cursor>\n    event: <event type>\n    data: <the event's canonical JSON>\n\n"
            "The first message is `retry: 3000`; a `: keepalive` comment comes every 15 s while "
            "nothing happens. The `id` is a resumable cursor: reconnecting with "
            "`Last-Event-ID: <cursor>` (EventSource does it by itself) resumes exactly after the last "
            "event received; a cursor this stream did not write answers 400. Without one, `from=` "
            "decides where the stream starts. Opening a stream is recorded on the audit ledger."
        ),
        "messages": {SSE_PREFIX + t: {"$ref": f"#/components/messages/{SSE_PREFIX}{t}"} for t in delivered},
    }


def _sse_operation(delivered: list[str]) -> dict[str, Any]:
    query = {
        "type": "object",
        "properties": {
            "topics": {
                "type": "string",
                "description": "Catalogue topics, comma-separated (default: every canonical and derived "
                "topic); an unknown one answers 422.",
            },
            "types": {
                "type": "string",
                "description": "Event types or prefixes ending in `.*` (`asset.*`), comma-separated.",
            },
            "from": {
                "type": "string",
                "maxLength": 40,
                "default": "now",
                "description": "`now`, `beginning`, or an ISO time with its offset (ignored with a cursor).",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": "End the stream after this many events.",
            },
        },
    }
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{SSE_CHANNEL}"},
        "summary": "The hub streams canonical and derived events to a client holding a stream key.",
        "security": [
            {"$ref": "#/components/securitySchemes/bearer"},
            {"$ref": "#/components/securitySchemes/apiKey"},
        ],
        "bindings": {"http": {"method": "GET", "query": query, "bindingVersion": HTTP_BINDING_VERSION}},
        "messages": [{"$ref": f"#/channels/{SSE_CHANNEL}/messages/{SSE_PREFIX}{t}"} for t in delivered],
    }


def _sse_message(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": f"{event_type} (SSE)",
        "summary": f"{event_type} as one Server-Sent Event; `data:` is the event's JSON.",
        "contentType": "application/json",
        "headers": _headers(
            {
                "event": {"type": "string", "const": event_type, "description": "The SSE `event:` field."},
                "id": {"type": "string", "description": "The SSE `id:` field: the resume cursor."},
            },
            required=["event", "id"],
        ),
        "payload": payload,
    }


def _webhook_channel(delivered: list[str]) -> dict[str, Any]:
    return {
        "address": None,
        "title": "Webhook deliveries",
        "servers": [{"$ref": "#/servers/subscriber"}],
        "description": (
            "The url of each subscription (`POST /subscriptions` with `topics` and `types`): the hub "
            "POSTs every matching event to it, one event per request, the body exactly the event's "
            "canonical JSON as on the log (so the signature covers the bytes received). Any 2xx "
            "accepts it; anything else, a timeout or a redirect (never followed) is retried with "
            "backoff, in order per subject, at least once. Each attempt is in "
            "`GET /subscriptions/{id}/deliveries`."
        ),
        "messages": {
            WEBHOOK_PREFIX + t: {"$ref": f"#/components/messages/{WEBHOOK_PREFIX}{t}"} for t in delivered
        },
    }


def _webhook_operation(delivered: list[str]) -> dict[str, Any]:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{WEBHOOK_CHANNEL}"},
        "summary": "The hub POSTs each event a subscription matches to the subscription's url, signed.",
        "security": [{"$ref": "#/components/securitySchemes/webhookSignature"}],
        "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING_VERSION}},
        "messages": [
            {"$ref": f"#/channels/{WEBHOOK_CHANNEL}/messages/{WEBHOOK_PREFIX}{t}"} for t in delivered
        ],
    }


def _webhook_message(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": f"{event_type} (webhook)",
        "summary": f"{event_type} POSTed to a subscription's url.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "allOf": [
                {"$ref": f"#/components/schemas/{WEBHOOK_HEADERS}"},
                {"properties": {"X-Hub-Event-Type": {"type": "string", "const": event_type}}},
            ],
        },
        "payload": payload,
    }


def _file_payloads() -> Payloads:
    payloads = {t: _payload_ref(f"./{event_schema_file(t)}") for t in EVENT_CLASSES}
    for name in (RAW_RECORD_NAME, DEAD_LETTER_NAME):
        payloads[name] = _payload_ref(f"./{name}.v1.schema.json")
    return payloads


def _bundled_schemas() -> tuple[dict[str, Any], Payloads]:
    """Every event and record schema in one generation (no name clashes), referenced in place."""
    adapters = [("events", EVENT_ADAPTER)] + [
        (name, TypeAdapter(model))
        for name, model in ((RAW_RECORD_NAME, RawTopicRecord), (DEAD_LETTER_NAME, DeadLetterRecord))
    ]
    keyed, defs = TypeAdapter.json_schemas(
        [(name, "validation", adapter) for name, adapter in adapters], ref_template=_SCHEMA_REF
    )
    mapping = keyed[("events", "validation")]["discriminator"]["mapping"]
    payloads = {t: _payload_ref(mapping[t]) for t in EVENT_CLASSES}
    for name in (RAW_RECORD_NAME, DEAD_LETTER_NAME):
        payloads[name] = _payload_ref(keyed[(name, "validation")]["$ref"])
    return dict(sorted(defs["$defs"].items())), payloads


_SCHEMA_REF = "#/components/schemas/{model}"


def _messages(payload_of: Payloads) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for event_type, cls in sorted(EVENT_CLASSES.items()):
        spec = _topic_of(event_type)
        messages[event_type] = {
            "name": event_type,
            "title": f"{cls.__name__} v{_version(event_type)}",
            "summary": f"{event_type}, published on {spec.name} keyed by {spec.key}.",
            "contentType": "application/json",
            "headers": _event_headers(event_type),
            "payload": payload_of[event_type],
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
            "payload": payload_of[name],
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


def _payload_ref(ref: str) -> dict[str, Any]:
    return {"schemaFormat": ASYNCAPI_SCHEMA_FORMAT, "schema": {"$ref": ref}}


def _root(schema: dict[str, Any], file_name: str, title: str) -> dict[str, Any]:
    # $schema/$id/title first, so the files read well; pydantic's own title is the class name.
    return {"$schema": SCHEMA_DIALECT, "$id": ID_BASE + file_name, **schema, "title": title}


def _version(event_type: str) -> int:
    return int(EVENT_CLASSES[event_type].model_fields["schema_version"].default)


def asyncapi_json(prefix: str = "") -> str:
    """The bundled document as the API serves it and docs/asyncapi.json holds it."""
    return json.dumps(asyncapi_document(prefix, bundled=True), indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m hub.schema_export [FILE]: rewrite the committed document
    import sys
    from pathlib import Path

    _write(Path(sys.argv[1] if len(sys.argv) > 1 else COMMITTED), asyncapi_json())
