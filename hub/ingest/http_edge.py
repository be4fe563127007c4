"""The hub's ingest service for the HTTP edge: store durably, then say what the sender gets.

Routes stay thin: they hand bytes and transport metadata to an `Ingestor`, which archives them
(the only thing a positive answer may wait for), and for FHIR also runs the pure translator once
to build the OperationOutcome / batch-response the sender expects. Publishing the events is the
pipeline's job (relay -> translator worker, which takes the translation made here instead of
translating again), exactly as for files and MLLP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import TranslateContext
from adapters.fhir import (
    META_CONTENT_TYPE,
    META_RESOURCE_TYPE,
    FhirRejected,
    Issue,
    ParsedBundle,
    bundle_kind,
    entry_outcomes,
    operation_outcome,
    parse_request,
    resource_outcome,
    response_bundle,
    transaction_outcome,
)
from hub.pipeline import ingest_bytes
from hub.translation.safe import run_translator

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hub.bootstrap import Hub
    from hub.ports import MessageStatus, RawRecord, StoreOutcome
    from hub.translation.deadletters import DeadLetter

FHIR_STATUS = {"too_large": 413, "unsupported_format": 415, "unsupported_type": 404, "invalid": 400}


@dataclass(frozen=True, slots=True)
class FhirAnswer:
    status: int
    body: dict[str, Any]
    raw_ref: str | None = None
    subjects: tuple[tuple[str, str, str], ...] = ()  # (event type, subject, event id) of what was created


def body_message_id(payload: bytes) -> str:
    """A stable id for a body without one of its own: its content hash."""
    return "sha256:" + hashlib.sha256(payload).hexdigest()[:32]


def _resource_id(payload: bytes) -> str | None:
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    rid = doc.get("id") if isinstance(doc, dict) else None
    kind = doc.get("resourceType") if isinstance(doc, dict) else None
    return f"{kind}/{rid}" if isinstance(rid, str) and isinstance(kind, str) else None


class Ingestor:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def systems(self) -> list[str]:
        return sorted(self._hub.workers)

    def identifier_systems(self) -> dict[str, str]:
        """The FHIR mapping's identifier systems -> hub schemes (what FHIR searches name them by)."""
        worker = self._hub.workers.get("fhir")
        if worker is None:
            return {}
        mapping = worker.mappings.current()
        return {**getattr(mapping, "identifier_systems", {}), **getattr(mapping, "namespaces", {})}

    @property
    def max_bytes(self) -> int:
        return self._hub.settings.max_file_bytes

    async def store(
        self, system: str, payload: bytes, *, message_id: str, transport: str, metadata: dict[str, str]
    ) -> StoreOutcome:
        return await ingest_bytes(
            self._hub, system, payload, message_id=message_id, transport=transport, metadata=metadata
        )

    async def status(self, raw_ref: str) -> tuple[MessageStatus | None, list[DeadLetter]]:
        status = await self._hub.archive.status(raw_ref)
        letters = await self._hub.dead_letters.query(status=None) if status else []
        return status, [d for d in letters if d.raw_ref == raw_ref]

    @staticmethod
    async def _read_fhir(
        payload: bytes, content_type: str | None, resource_type: str | None, mapping: Any
    ) -> tuple[Any, FhirRejected | None]:
        """(parsed, None) or (None, why it is refused). Raises FhirRejected only for too large."""
        try:
            parsed = await asyncio.to_thread(
                parse_request, payload, content_type, mapping, expected_type=resource_type
            )
        except FhirRejected as exc:
            if exc.kind == "too_large":
                raise
            return None, exc
        except Exception as exc:  # noqa: BLE001 - a reader bug is a refusal naming it, never a 500
            issue = Issue("processing", None, f"the body could not be read: {type(exc).__name__}")
            return None, FhirRejected("invalid", [issue])
        return parsed, None

    async def _take_over_refused(self, record: RawRecord, metadata: dict[str, str]) -> RawRecord | None:
        """The stored copy came in another request; if that one was not applied, this one takes over."""
        status = await self._hub.archive.status(record.raw_ref)
        if status is not None and status.status == "translated":
            return None  # applied already, under its own request: this copy changes nothing
        return await self._hub.archive.reopen(record.raw_ref, {**record.metadata, **metadata})

    async def fhir(self, payload: bytes, content_type: str | None, resource_type: str | None) -> FhirAnswer:
        """Validate at the edge, archive, translate once for the answer; the worker publishes that result.

        Identity is the content plus what the request says it is (endpoint, content type): the
        same bytes first posted to the wrong endpoint (400) and then resent correctly take over
        the refused record (hub.archive.SqliteRawArchive.reopen), which is then applied once.
        """
        worker = self._hub.worker("fhir")
        mapping = worker.mappings.current()
        try:
            parsed, rejection = await self._read_fhir(payload, content_type, resource_type, mapping)
        except FhirRejected as exc:  # too large: refused before storing, never told anything positive
            return FhirAnswer(413, operation_outcome(exc.issues))
        message_id = _resource_id(payload) or body_message_id(payload)
        metadata = {META_CONTENT_TYPE: content_type or "", META_RESOURCE_TYPE: resource_type or ""}
        outcome = await self.store(
            "fhir", payload, message_id=message_id, transport="http", metadata=metadata
        )
        record = outcome.record
        ref = record.raw_ref
        if rejection is not None:
            # Kept in the archive (the translator worker dead-letters it with the same reasons).
            return FhirAnswer(FHIR_STATUS.get(rejection.kind, 400), operation_outcome(rejection.issues), ref)
        fresh = not outcome.duplicate
        if outcome.duplicate and _request_meta(record.metadata) != metadata:
            reopened = await self._take_over_refused(record, metadata)
            record, fresh = reopened or record, reopened is not None
        ctx = TranslateContext(
            site=self._hub.settings.site,
            tz=self._hub.settings.zone,
            adapter_version=worker.adapter.version,
            mapping_version=mapping.version,
        )
        translation = await asyncio.to_thread(run_translator, worker.adapter, record, payload, mapping, ctx)
        if fresh:
            worker.remember(record, ctx.mapping_version, translation)
        if isinstance(parsed, ParsedBundle):
            kind = bundle_kind(payload, content_type)
            outcomes = entry_outcomes(translation)
            if kind == "transaction" and any(o.failed for o in outcomes):
                return FhirAnswer(400, transaction_outcome(outcomes), ref)
            return FhirAnswer(200, response_bundle(kind or "batch", outcomes), ref)
        if translation.failures:
            return FhirAnswer(400, resource_outcome(translation), ref)
        subjects = tuple((e.event.type, e.event.subject, str(e.event.event_id)) for e in translation.events)
        return FhirAnswer(201 if translation.events else 200, resource_outcome(translation), ref, subjects)


def _request_meta(metadata: Mapping[str, str]) -> dict[str, str]:
    """What a FHIR request said about its body, as stored with the record."""
    return {k: metadata.get(k, "") for k in (META_CONTENT_TYPE, META_RESOURCE_TYPE)}
