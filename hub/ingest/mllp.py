"""HL7 v2 over MLLP into the hub: store first, translate once, answer from the stored outcome.

Per frame (the listener calls `handle` per frame, in order per connection):
1. read the MSH (charset decided before splitting; see adapters.his.decode), and the MSH of every
   message when the frame holds several (a FHS/BHS batch, or messages one after another);
2. store the bytes with their dedup keys (MSH-3, MSH-4, MSH-10 and the normalised content of each
   message, the same rule as files and HTTP: hub.ingest.source_keys) in a group-committed
   transaction, before any translator runs:
   - AR: the archive could not commit; the sender must send again;
   - an exact resend gets the answer stored for the first copy and creates nothing;
   - the same MSH-10 with other content is a conflict: stored, dead-lettered, AE;
3. translate once (hub.translation.safe: a translator that raises is a dead letter, not a dropped
   connection; in a translator process when HUB_MLLP_TRANSLATE_PROCESSES > 0, hub.translation.pool,
   so the listener's process keeps its CPU for answering and the pipeline where cores are free) and
   answer per message (adapters.his.verdict: one ACK per MSH-10, in order, in one answer frame):
   - AA: applied (also for message types the hub does not map: archived, counted); units kept
     with a field unknown (a ward not in the mapping) are named in ERR with severity W;
   - AE + one ERR per failed unit (segment/field, reason): dead-lettered first (durable), then
     answered; the message's other units are applied;
   - AR: MSH-10 is empty (and the type is one the hub maps): kept, dead-lettered, never applied;
   with HUB_MLLP_ACK_AFTER=storage, AA once stored (an empty MSH-10 still AR), and translation
   failures are only dead-lettered;
   the answer is kept with the message (next group commit) for a resend, and the translation is
   handed to the translation worker, which publishes it without translating again.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from adapters.base import Failure, SourceLocation, TranslateContext, Translation
from adapters.errors import MalformedMessage
from adapters.his.ack import AckError, build_ack, validate_strict
from adapters.his.batch import split_messages
from adapters.his.decode import decode
from adapters.his.header import MessageHeader, header
from adapters.his.translate import HANDLERS
from adapters.his.verdict import REFUSED, Verdict, verdict
from hub.errors import NotStored
from hub.faults import fault_point
from hub.ingest.archive import SourceKey
from hub.ingest.source_keys import hl7_content, hl7_keys
from hub.ports import InboundMessage, RawRecord
from hub.translation.deadletters import dead_letter_id_for
from hub.translation.pool import TranslatorPool, Unavailable
from hub.translation.registry import ADAPTERS
from hub.translation.safe import run_translator

if TYPE_CHECKING:
    from hub.bootstrap import Hub
    from hub.translation.worker import TranslationWorker

logger = structlog.get_logger()
SYSTEM = "his"
MSH = SourceLocation(segment="MSH")  # where a whole-message failure points in an ERR segment


def fallback_nak(reason: str, now: datetime, code: str = "AR") -> bytes:
    """A NAK for bytes with no readable MSH: nothing to address it to, so a minimal ACK."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    text = reason.replace("|", "/").replace("\r", " ")[:200]
    return f"MSH|^~\\&|HUB||||{stamp}||ACK|HUB{stamp}|P|2.5\rMSA|{code}||{text}\r".encode("ascii", "replace")


class MllpIngest:
    """The MLLP listener's handler: `await handle(frame, metadata) -> ACK bytes`."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._worker: TranslationWorker = hub.worker(SYSTEM)
        self._validate = hub.settings.mllp_ack_after == "translation"
        self._strict = hub.settings.mllp_strict
        processes = hub.settings.mllp_translate_processes if self._validate else 0
        self._pool = (
            TranslatorPool(processes, hub.settings.mapping_dir, hub.settings.secret_bytes)
            if processes
            else None
        )
        if self._pool is not None:
            self._pool.start()
        self.counts: dict[str, int] = {"AA": 0, "AE": 0, "AR": 0, "resend": 0, "conflict": 0, "unmapped": 0}

    async def handle(self, frame: bytes, metadata: dict[str, str]) -> bytes:
        now = datetime.now(UTC)
        mapping = self._worker.mappings.current()
        forced = getattr(mapping, "encoding", None)
        try:
            head = header(frame, forced)
        except MalformedMessage as exc:
            return await self._unreadable(frame, metadata, str(exc), now)
        heads = _headers(frame, forced) if head.messages > 1 else (head,)
        extra, rejected, keys, early = self._before_storing(head, heads, frame, forced, now)
        try:
            outcome = await self._hub.archive.store(
                InboundMessage(
                    system=SYSTEM,
                    payload=frame,
                    transport="mllp",
                    # An empty MSH-10 (refused, never applied) is known by its content's hash.
                    message_id=head.control_id or f"sha256:{hashlib.sha256(frame).hexdigest()[:32]}",
                    site=self._hub.settings.site,
                    metadata={**metadata, **extra},
                    received_at=now,
                ),
                keys=keys,
                answer=early,
            )
        except NotStored as exc:
            self.counts["AR"] += len(heads)
            logger.exception("mllp_not_stored", control_id=head.control_id, error=str(exc))
            return build_ack(
                head, "AR", error=AckError(f"not stored, send again: {exc}", hl7_code="207"), now=now
            )
        fault_point("ingest.after_store")
        record = outcome.record
        ctx = self._context(record, mapping)
        if outcome.duplicate:
            self.counts["resend"] += 1
            return outcome.answer or await self._answer_again(heads, record, mapping, ctx, now)
        if outcome.conflict_with:
            return await self._conflict(head, record, outcome.conflict_with, ctx, now)
        translation = Translation()
        if rejected is not None:
            translation = Translation(failures=(rejected,))
        elif self._validate:
            translation, ctx = await self._translate(record, frame, mapping, ctx)
            self._worker.remember(record, ctx.mapping_version, translation)
        batch = _is_batch(frame)
        answered = await self._answer(heads, record, translation, ctx, now, batch=batch, kept=early)
        for code in answered.codes:
            self.counts[code] += 1
        if not translation.events and translation.skipped and not translation.failures:
            self.counts["unmapped"] += 1
        logger.info(
            "mllp_message",
            control_id=head.control_id,
            message_type=head.type_label,
            messages=len(heads),
            ack="".join(sorted(set(answered.codes))),
            raw_ref=record.raw_ref,
            encoding=head.encoding,
        )
        return answered.answer

    async def _translate(
        self, record: RawRecord, frame: bytes, mapping: Any, ctx: TranslateContext
    ) -> tuple[Translation, TranslateContext]:
        """The translation the answer depends on, and the context (mapping version) it was made with.

        In the translator pool when there is one (the listener's process keeps its CPU); in-process
        without one, for an adapter the hub was built with in place of the registered one (tests),
        while the pool's processes start, or when one ended. In-process it runs inline, not in a
        thread: a thread hop costs more than it saves under the one GIL.
        """
        adapter = self._worker.adapter
        if self._pool is not None and adapter is ADAPTERS.get(SYSTEM):
            try:
                version, translation = await self._pool.translate(SYSTEM, record, frame, ctx, MSH)
            except Unavailable:
                pass  # starting, or ended (replaced for the next message): this one is translated here
            else:
                return translation, replace(ctx, mapping_version=version)
        return run_translator(adapter, record, frame, mapping, ctx, location=MSH), ctx

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def _before_storing(
        self,
        head: MessageHeader,
        heads: tuple[MessageHeader | None, ...],
        frame: bytes,
        forced: str | None,
        now: datetime,
    ) -> tuple[dict[str, str], Failure | None, tuple[SourceKey, ...], bytes | None]:
        """Metadata, a strict refusal, the dedup keys, and the answer if it is known already."""
        extra = {"message_type": head.type_label}
        rejected = self._strictly(head, frame) if self._strict else None
        if rejected is not None:
            # Kept on the record: the worker dead-letters it too, never translates what was refused.
            extra |= {"rejected": rejected.reason, "rejected_code": rejected.code}
        if head.messages > 1:
            keys = hl7_keys(frame, forced)
        elif head.dedupe_key is not None:
            keys = (SourceKey(head.dedupe_key, hl7_content(frame)),)
        else:
            keys = ()  # an empty MSH-10: nothing to deduplicate by but the bytes (it is refused)
        # Known before any translator runs (storage mode, a strict refusal): kept in the same
        # transaction as the message. Otherwise decided by the translation, kept just after.
        early = None
        if rejected is not None:
            early = verdict(heads, Translation(failures=(rejected,)), now, batch=_is_batch(frame)).answer
        elif not self._validate:
            # AA once stored, but never for a message the hub will refuse (an empty MSH-10).
            early = verdict(heads, Translation(failures=_unkeyed(heads)), now, batch=_is_batch(frame)).answer
        return extra, rejected, keys, early

    def _context(self, record: RawRecord, mapping: Any) -> TranslateContext:
        return TranslateContext(
            site=record.site,
            tz=self._hub.settings.zone,
            adapter_version=self._worker.adapter.version,
            mapping_version=mapping.version,
        )

    async def _answer(
        self,
        heads: tuple[MessageHeader | None, ...],
        record: RawRecord,
        translation: Translation,
        ctx: TranslateContext,
        now: datetime,
        *,
        batch: bool,
        kept: bytes | None = None,
    ) -> Verdict:
        """Per message: AR (refused), AE naming its failed units (their dead letters durable
        first), else AA (naming units kept with a field unknown); kept for a resend.

        `kept`: the answer already stored with the message, if it was known before translating.
        """
        letters = [self._worker.dead_letter(record, f, ctx) for f in translation.failures]
        letters += [self._worker.dead_letter(record, f, ctx, kind="note") for f in translation.notes]
        if letters:
            # Answered only once the dead letters are durable (the worker later writes the same ids again).
            await self._hub.dead_letters.record(letters)
        answered = verdict(heads, translation, now, batch=batch)
        if kept is not None:
            return Verdict(kept, answered.codes)
        self._hub.archive.note_answer(record.raw_ref, answered.answer)
        return answered

    async def _answer_again(
        self,
        heads: tuple[MessageHeader | None, ...],
        record: RawRecord,
        mapping: Any,
        ctx: TranslateContext,
        now: datetime,
    ) -> bytes:
        """A resend whose first copy has no stored ACK (it came as a file, or a crash lost the ACK)."""
        payload = await self._hub.archive.payload(record.raw_ref)
        if record.transport != "mllp" or not self._validate:
            # Stored (by its first copy); its fate is that record's. Refused the same way, though.
            return verdict(heads, Translation(failures=_unkeyed(heads)), now, batch=_is_batch(payload)).answer
        translation = run_translator(self._worker.adapter, record, payload, mapping, ctx, location=MSH)
        answered = await self._answer(heads, record, translation, ctx, now, batch=_is_batch(payload))
        return answered.answer

    def _strictly(self, head: MessageHeader, frame: bytes) -> Failure | None:
        """Opt-in (HUB_MLLP_STRICT): hl7apy's full validation. Slow (tens of messages per second),
        so for channels whose volume allows it; each problem is named, never a field value."""
        try:
            text = decode(frame, head.encoding).text
            problems = [p for p in validate_strict(text) if p.startswith("error")]
        except Exception as exc:  # noqa: BLE001 - a validator crash is a refusal, never a dropped connection
            problems = [f"error: the validator failed: {type(exc).__name__}"]
        if not problems:
            return None
        reason = "strict HL7 validation: " + "; ".join(problems[:5])
        return Failure("message", reason, "invalid_structure", MSH)

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
        """No readable MSH: stored, dead-lettered, and a minimal AE (AR if it could not be stored)."""
        sha = hashlib.sha256(frame).hexdigest()
        try:
            outcome = await self._hub.archive.store(
                InboundMessage(
                    system=SYSTEM,
                    payload=frame,
                    transport="mllp",
                    message_id=f"sha256:{sha[:32]}",
                    site=self._hub.settings.site,
                    metadata=dict(metadata),
                    received_at=now,
                )
            )
        except NotStored as exc:
            logger.exception("mllp_not_stored", error=str(exc))
            self.counts["AR"] += 1
            return fallback_nak(f"not stored, send again: {exc}", now)
        if outcome.duplicate and outcome.answer:
            self.counts["resend"] += 1
            return outcome.answer
        record = outcome.record
        mapping = self._worker.mappings.current()
        ctx = self._context(record, mapping)
        failure = Failure("message", reason, "malformed", MSH)
        await self._hub.dead_letters.record([self._worker.dead_letter(record, failure, ctx)])
        nak = fallback_nak(reason, now, code="AE")
        self._hub.archive.note_answer(record.raw_ref, nak)
        self.counts["AE"] += 1
        logger.warning(
            "mllp_unreadable",
            reason=reason,
            dead_letter=dead_letter_id_for(record.raw_ref, "message"),
        )
        return nak


def _headers(frame: bytes, forced: str | None) -> tuple[MessageHeader | None, ...]:
    """The MSH of every message in a frame of several (None where one cannot be read)."""
    heads: list[MessageHeader | None] = []
    for message in split_messages(frame):
        try:
            heads.append(header(message, forced))
        except MalformedMessage:
            heads.append(None)
    return tuple(heads)


def _is_batch(payload: bytes) -> bool:
    """A FHS/BHS batch (answered as one), not messages merely one after another."""
    return payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:3] in (b"FHS", b"BHS")


def _unkeyed(heads: tuple[MessageHeader | None, ...]) -> tuple[Failure, ...]:
    """The refusals the header alone decides (an empty MSH-10 on a type the hub maps), for an
    answer given before translating; the translator refuses the same messages the same way."""
    several = len(heads) > 1
    return tuple(
        Failure(
            f"m{i}/MSH" if several else "message",
            "MSH-10 (message control id) is empty: refused, nothing of it is applied",
            REFUSED,
            SourceLocation(segment="MSH", field="MSH-10"),
        )
        for i, h in enumerate(heads, 1)
        if h is not None and not h.control_id and (h.message_code, h.trigger_event) in HANDLERS
    )
