"""HL7 v2 over MLLP into the hub: archive, decide the ACK, answer.

Per message (the listener calls `handle` per frame, in order per connection):
1. read the MSH (charset decided before splitting; see adapters.his.decode);
2. translate it once, purely, to know whether it would be dead-lettered;
3. store the bytes, the dedupe key (MSH-3, MSH-4, MSH-10) and the ACK in ONE group-committed
   transaction; only then answer:
   - AA: stored and translatable (also for message types the hub does not map: archived, counted);
     with HUB_MLLP_ACK_AFTER=storage, AA once stored, and translation failures are only dead-lettered;
   - AE + ERR (segment/field, reason): stored, dead-lettered first, then answered;
   - AR: the archive could not commit; the sender must send again;
   - an exact resend gets the ACK stored for the first copy and creates nothing;
   - the same MSH-10 with other bytes is a conflict: stored, dead-lettered, AE.
The events themselves are published by the pipeline (relay -> translator worker), which
re-translates deterministically, so the log never depends on this hot path.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from adapters.base import Failure, SourceLocation, TranslateContext, Translation
from adapters.errors import MalformedMessage, MappingError
from adapters.his.ack import AckError, build_ack, validate_strict
from adapters.his.decode import decode
from adapters.his.header import MessageHeader, header
from hub.archive import raw_ref_for
from hub.deadletters import dead_letter_id_for
from hub.errors import NotStored
from hub.faults import fault_point
from hub.ports import InboundMessage, RawRecord

if TYPE_CHECKING:
    from hub.bootstrap import Hub
    from hub.translation import TranslationWorker

logger = structlog.get_logger()
SYSTEM = "his"


def fallback_nak(reason: str, now: datetime) -> bytes:
    """An AR for bytes with no readable MSH: nothing to address it to, so a minimal ACK."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    text = reason.replace("|", "/").replace("\r", " ")[:200]
    return f"MSH|^~\\&|HUB||||{stamp}||ACK|HUB{stamp}|P|2.5\rMSA|AR||{text}\r".encode("ascii", "replace")


class MllpIngest:
    """The MLLP listener's handler: `await handle(frame, metadata) -> ACK bytes`."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._worker: TranslationWorker = hub.worker(SYSTEM)
        self._validate = hub.settings.mllp_ack_after == "translation"
        self._strict = hub.settings.mllp_strict
        self.counts: dict[str, int] = {"AA": 0, "AE": 0, "AR": 0, "resend": 0, "conflict": 0, "unmapped": 0}

    async def handle(self, frame: bytes, metadata: dict[str, str]) -> bytes:
        now = datetime.now(UTC)
        mapping = self._worker.mappings.current()
        forced = getattr(mapping, "encoding", None)
        try:
            head = header(frame, forced)
        except MalformedMessage as exc:
            return await self._unreadable(frame, metadata, str(exc), now)
        sha = hashlib.sha256(frame).hexdigest()
        record = RawRecord(
            raw_ref=raw_ref_for(SYSTEM, sha),
            system=SYSTEM,
            site=self._hub.settings.site,
            message_id=head.control_id,
            sha256=sha,
            size=len(frame),
            transport="mllp",
            received_at=now,
            metadata={**metadata, "message_type": head.type_label},
        )
        ctx = TranslateContext(
            site=record.site,
            tz=self._hub.settings.zone,
            adapter_version=self._worker.adapter.version,
            mapping_version=mapping.version,
        )
        # Inline, not in a thread: ~0.1 ms of pure CPU is cheaper than a thread hop, and the
        # event loop keeps the writer's group commit fed (see bench/bench_his.py).
        translation = self._translate(record, frame, mapping, ctx) if self._validate else Translation()
        if self._strict and not translation.failures:
            translation = self._strictly(head, frame, translation)
            if translation.failures:
                # The worker must dead-letter it too, not translate what the sender was told is refused.
                record = replace(
                    record,
                    metadata={
                        **record.metadata,
                        "rejected": translation.failures[0].reason,
                        "rejected_code": translation.failures[0].code,
                    },
                )
        failure = translation.failures[0] if translation.failures else None
        ack = (
            build_ack(head, "AE", error=AckError.from_failure(failure), now=now)
            if failure
            else build_ack(head, "AA", now=now)
        )
        try:
            outcome = await self._hub.archive.store(
                InboundMessage(
                    system=SYSTEM,
                    payload=frame,
                    transport="mllp",
                    message_id=head.control_id,
                    site=record.site,
                    metadata=record.metadata,
                    received_at=now,
                ),
                key=head.dedupe_key,
                answer=ack,
            )
        except NotStored as exc:
            self.counts["AR"] += 1
            logger.exception("mllp_not_stored", control_id=head.control_id, error=str(exc))
            return build_ack(
                head, "AR", error=AckError(f"not stored, send again: {exc}", hl7_code="207"), now=now
            )
        fault_point("ingest.after_store")
        if outcome.duplicate:
            self.counts["resend"] += 1
            return outcome.answer or ack
        if outcome.conflict_with:
            return await self._conflict(head, outcome.record, outcome.conflict_with, ctx, now)
        if failure:
            # NAK only once the dead letter is durable (the worker later writes the same ids again).
            await self._hub.dead_letters.record(
                [self._worker.dead_letter(record, f, ctx) for f in translation.failures]
            )
        code = "AE" if failure else "AA"
        self.counts[code] += 1
        if not translation.events and translation.skipped and not failure:
            self.counts["unmapped"] += 1
        logger.info(
            "mllp_message",
            control_id=head.control_id,
            message_type=head.type_label,
            ack=code,
            raw_ref=outcome.record.raw_ref,
            encoding=head.encoding,
        )
        return ack

    def _translate(self, record: RawRecord, frame: bytes, mapping: Any, ctx: TranslateContext) -> Translation:
        try:
            return self._worker.adapter.translate(record, frame, mapping, ctx)
        except (MalformedMessage, MappingError) as exc:
            code = "malformed" if isinstance(exc, MalformedMessage) else "mapping"
            return Translation(failures=(Failure("message", str(exc), code, SourceLocation(segment="MSH")),))

    def _strictly(self, head: MessageHeader, frame: bytes, translation: Translation) -> Translation:
        """Opt-in (HUB_MLLP_STRICT): hl7apy's full validation. Slow (tens of messages per second),
        so for channels whose volume allows it; each problem is named, never a field value."""
        text = decode(frame, head.encoding).text
        problems = [p for p in validate_strict(text) if p.startswith("error")]
        if not problems:
            return translation
        reason = "strict HL7 validation: " + "; ".join(problems[:5])
        return Translation(
            failures=(Failure("message", reason, "invalid_structure", SourceLocation(segment="MSH")),)
        )

    async def _conflict(
        self, head: MessageHeader, record: RawRecord, earlier: str, ctx: TranslateContext, now: datetime
    ) -> bytes:
        reason = (
            f"MSH-10 {head.control_id!r} from {head.sending_application}/{head.sending_facility} was already "
            f"received with different content (archived as {earlier})"
        )
        failure = Failure("message", reason, "conflict", SourceLocation(segment="MSH", field="MSH-10"))
        await self._hub.dead_letters.record([self._worker.dead_letter(record, failure, ctx)])
        ack = build_ack(
            head, "AE", error=AckError(reason, hl7_code="205", segment="MSH", sequence=1, field=10), now=now
        )
        await self._hub.archive.save_answer(record.raw_ref, ack)
        self.counts["conflict"] += 1
        self.counts["AE"] += 1
        logger.warning("mllp_conflict", control_id=head.control_id, raw_ref=record.raw_ref, earlier=earlier)
        return ack

    async def _unreadable(self, frame: bytes, metadata: dict[str, str], reason: str, now: datetime) -> bytes:
        sha = hashlib.sha256(frame).hexdigest()
        nak = fallback_nak(reason, now)
        try:
            await self._hub.archive.store(
                InboundMessage(
                    system=SYSTEM,
                    payload=frame,
                    transport="mllp",
                    message_id=f"sha256:{sha[:32]}",
                    site=self._hub.settings.site,
                    metadata=dict(metadata),
                    received_at=now,
                ),
                answer=nak,
            )
        except NotStored as exc:
            logger.exception("mllp_not_stored", error=str(exc))
        self.counts["AR"] += 1
        logger.warning(
            "mllp_unreadable",
            reason=reason,
            dead_letter=dead_letter_id_for(raw_ref_for(SYSTEM, sha), "message"),
        )
        return nak
