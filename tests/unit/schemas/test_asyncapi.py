"""The AsyncAPI document: valid against the official AsyncAPI 3.0.0 JSON Schema, committed as
generated, and true to what the SSE stream and the webhook sender really do.

The official schema is vendored from the `@asyncapi/specs` package (6.11.1,
schemas/3.0.0-without-$id.json, Apache-2.0: tests/fixtures/asyncapi/LICENSE and NOTICE).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft7Validator

from hub.api.routes import events as event_routes
from hub.delivery.webhooks import Subscription, send_event, verify_signature
from hub.ports import BusRecord
from hub.schema_export import (
    COMMITTED,
    SSE_CHANNEL,
    WEBHOOK_CHANNEL,
    WEBHOOK_HEADERS,
    asyncapi_document,
    asyncapi_json,
)
from schemas.catalogue import EVENT_CLASSES, dump_event
from tests.unit.schemas.examples import example_event
from topics.catalogue import CANONICAL_TOPICS, DERIVED_TOPICS, topic_for_event_type

ROOT = Path(__file__).resolve().parents[3]
OFFICIAL = ROOT / "tests" / "fixtures" / "asyncapi" / "asyncapi-3.0.0.schema.json"
DELIVERED = sorted(t for spec in (*CANONICAL_TOPICS, *DERIVED_TOPICS) for t in spec.event_types)


@cache
def official() -> Draft7Validator:
    return Draft7Validator(json.loads(OFFICIAL.read_text(encoding="utf-8")))


@cache
def bundled() -> dict[str, Any]:
    return asyncapi_document("h01.", bundled=True)


def errors(document: dict[str, Any]) -> list[str]:
    # JSON round trip: the validator sees what a reader of the file sees (tuples as lists).
    found = official().iter_errors(json.loads(json.dumps(document)))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in found]


def payload_validator(document: dict[str, Any], message: str) -> Draft7Validator:
    """The message's payload schema, its `#/components/schemas/...` references resolvable."""
    ref = document["components"]["messages"][message]["payload"]["schema"]["$ref"]
    return Draft7Validator({"$ref": ref, "components": {"schemas": document["components"]["schemas"]}})


class TestOfficialSchema:
    def test_the_exported_yaml_is_valid_asyncapi_3(self, asyncapi: dict[str, Any]) -> None:
        """asyncapi.yaml (`hub schemas export`) passes the official AsyncAPI 3.0.0 JSON Schema."""
        assert errors(asyncapi) == []

    def test_the_bundled_document_is_valid_asyncapi_3(self) -> None:
        """The served and committed document passes it too, schemas included."""
        assert errors(bundled()) == []

    @pytest.mark.parametrize(
        ("where", "change"),
        [
            (
                "operation binding",
                lambda d: d["operations"]["deliver.webhooks"]["bindings"]["http"].update(x=1),
            ),
            ("security scheme", lambda d: d["components"]["securitySchemes"]["webhookSignature"].pop("in")),
            ("operation action", lambda d: d["operations"][f"stream.{SSE_CHANNEL}"].update(action="push")),
            ("kafka binding", lambda d: d["channels"]["canonical.asset.v1"]["bindings"]["kafka"].update(x=1)),
        ],
    )
    def test_the_validator_can_fail(self, where: str, change: Any) -> None:
        """A document broken in one place is refused: the check above is not vacuous."""
        broken = copy.deepcopy(bundled())
        change(broken)
        assert errors(broken), where


class TestCommitted:
    def test_docs_asyncapi_json_is_what_the_hub_generates(self) -> None:
        """docs/asyncapi.json is byte-identical to the generated document."""
        committed = (ROOT / COMMITTED).read_text(encoding="utf-8")
        assert committed == asyncapi_json(), (
            f"{COMMITTED} is stale: regenerate it with `python -m hub.schema_export` and commit it"
        )

    def test_bundled_stands_alone_and_every_reference_resolves(self) -> None:
        """No reference leaves the document, and each one points at something that exists."""
        document = bundled()
        text = json.dumps(document)
        assert '"$ref": "./' not in text
        for ref in {part.split('"', 1)[0] for part in text.split('"$ref": "')[1:]}:
            node: Any = document
            for key in ref.removeprefix("#/").split("/"):
                node = node[key]
            assert isinstance(node, dict), ref

    def test_bundled_and_exported_differ_only_in_where_payloads_point(self, asyncapi: dict[str, Any]) -> None:
        """Same channels, operations, messages and servers: the yaml and the JSON never drift apart."""
        document = bundled()
        assert document["channels"] == asyncapi["channels"]
        assert document["operations"] == asyncapi["operations"]
        assert document["servers"] == asyncapi["servers"]
        strip = {
            name: {k: v for k, v in m.items() if k != "payload"}
            for name, m in asyncapi["components"]["messages"].items()
        }
        assert strip == {
            name: {k: v for k, v in m.items() if k != "payload"}
            for name, m in document["components"]["messages"].items()
        }


class TestSameEventSchemas:
    @pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
    def test_kafka_sse_and_webhook_messages_carry_one_schema(self, event_type: str) -> None:
        """An event's message on its topic, on the SSE stream and as a webhook point at one schema,
        and a real event (as dump_event writes it) is valid against it; another type's is not."""
        document = bundled()
        messages = document["components"]["messages"]
        refs = {
            messages[name]["payload"]["schema"]["$ref"]
            for name in (event_type, f"sse.{event_type}", f"webhook.{event_type}")
            if name in messages
        }
        assert len(refs) == 1
        assert (f"sse.{event_type}" in messages) == (event_type in DELIVERED)
        validator = payload_validator(document, event_type)
        validator.validate(json.loads(dump_event(example_event(event_type))))
        other = next(t for t in EVENT_CLASSES if t != event_type)
        assert not validator.is_valid(json.loads(dump_event(example_event(other))))

    def test_sse_and_webhooks_deliver_every_canonical_and_derived_type(self) -> None:
        """Both channels list one message per event type on the canonical and derived topics."""
        channels = bundled()["channels"]
        assert sorted(channels[SSE_CHANNEL]["messages"]) == [f"sse.{t}" for t in DELIVERED]
        assert sorted(channels[WEBHOOK_CHANNEL]["messages"]) == [f"webhook.{t}" for t in DELIVERED]
        kept_back = {t for t in EVENT_CLASSES if t not in DELIVERED}  # e.g. audit.access_recorded
        assert {topic_for_event_type(t).name for t in kept_back}.isdisjoint(event_routes.STREAMABLE)


class TestSse:
    def test_query_parameters_are_the_routes(self) -> None:
        """The SSE operation's query schema names exactly the parameters GET /events/stream takes."""
        app = FastAPI()
        app.include_router(event_routes.router)
        parameters = app.openapi()["paths"]["/events/stream"]["get"]["parameters"]
        route_query = {p["name"] for p in parameters if p["in"] == "query"}
        operation = bundled()["operations"][f"stream.{SSE_CHANNEL}"]
        assert set(operation["bindings"]["http"]["query"]["properties"]) == route_query
        assert operation["bindings"]["http"]["method"] == "GET"
        assert bundled()["channels"][SSE_CHANNEL]["address"] == "/events/stream"
        assert {p["name"] for p in parameters if p["in"] == "header"} == {"Last-Event-ID"}
        assert "Last-Event-ID" in bundled()["channels"][SSE_CHANNEL]["description"]


SUB = Subscription(
    id="s1", url="https://receiver.example/hook", topics=("canonical.asset.v1",), types=(), description="",
    created_by="k1", created_at=example_event("asset.relocated").occurred_at, status="active",
    status_changed_at=example_event("asset.relocated").occurred_at, start_offsets={}, last_event_id=None,
    last_delivered_at=None, consecutive_failures=0, last_error=None, last_attempt_at=None,
)  # fmt: skip
HTTPX_OWN = {"host", "accept", "accept-encoding", "connection", "content-length"}


async def _delivered(secrets: list[str], replay_id: str | None) -> httpx.Request:
    """What send_event POSTs for a real asset.relocated event (the receiver answers 204)."""
    event = example_event("asset.relocated")
    body = dump_event(event)
    record = BusRecord(
        "canonical.asset.v1", 0, 3, "A-1", body,
        (("event_type", b"asset.relocated"), ("event_id", str(event.event_id).encode()), ("schema_version", b"2")), 0,
    )  # fmt: skip
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        sent = await send_event(client, SUB, secrets, record, replay_id=replay_id)
    assert sent.error is None
    return seen[0]


class TestWebhooks:
    @pytest.mark.parametrize(
        ("secrets", "replay_id"),
        [(["whsec_new"], None), (["whsec_new", "whsec_old"], None), (["whsec_new"], "rp_1")],
        ids=["one-secret", "rotation-overlap", "replay"],
    )
    async def test_the_documented_headers_are_the_ones_sent(
        self, secrets: list[str], replay_id: str | None
    ) -> None:
        """Every header send_event sets is declared, the declared schema accepts the values sent
        (two signatures during a rotation's overlap, X-Hub-Replay on a replay), and the body is
        valid against the message's payload schema."""
        document = bundled()
        request = await _delivered(secrets, replay_id)
        sent = {k.decode(): v.decode() for k, v in request.headers.raw}
        declared = document["components"]["schemas"][WEBHOOK_HEADERS]
        assert {k.lower() for k in sent} - HTTPX_OWN == {k.lower() for k in declared["properties"]} - (
            set() if replay_id else {"x-hub-replay"}
        )
        message = document["components"]["messages"]["webhook.asset.relocated"]
        schemas = {"components": {"schemas": document["components"]["schemas"]}}
        Draft7Validator({**message["headers"], **schemas}).validate(sent)
        payload_validator(document, "webhook.asset.relocated").validate(json.loads(request.content))
        assert all(verify_signature(s, request.content, sent["X-Hub-Signature-256"]) for s in secrets)

    def test_a_header_schema_refuses_what_the_hub_never_sends(self) -> None:
        """Another type's name, or a signature that is not sha256=<64 hex>, is refused."""
        document = bundled()
        message = document["components"]["messages"]["webhook.asset.relocated"]
        validator = Draft7Validator(
            {**message["headers"], "components": {"schemas": document["components"]["schemas"]}}
        )
        good = {
            "Content-Type": "application/json", "X-Hub-Event-Type": "asset.relocated", "X-Hub-Event-Id": "e1",
            "X-Hub-Delivery": "d1", "X-Hub-Subscription": "s1", "X-Hub-Signature-256": "sha256=" + "a" * 64,
        }  # fmt: skip
        assert validator.is_valid(good)
        assert not validator.is_valid({**good, "X-Hub-Event-Type": "asset.used"})
        assert not validator.is_valid({**good, "X-Hub-Signature-256": "md5=abc"})

    def test_security_names_the_signature_header(self) -> None:
        """The webhook operation's security is the HMAC signature header."""
        document = bundled()
        operation = document["operations"][f"deliver.{WEBHOOK_CHANNEL}"]
        [scheme] = [
            document["components"]["securitySchemes"][ref["$ref"].rsplit("/", 1)[1]]
            for ref in operation["security"]
        ]
        assert (scheme["type"], scheme["in"], scheme["name"]) == (
            "httpApiKey",
            "header",
            "X-Hub-Signature-256",
        )
        assert operation["bindings"]["http"]["method"] == "POST"
