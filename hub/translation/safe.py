"""The one way the hub runs a translator, with the one error rule.

Every path that translates (the translation worker, MLLP ingest, HTTP/FHIR ingest, the CLI's
dry run) calls `run_translator`. Whatever the translator raises becomes a whole-message
`Failure` (a dead letter once recorded) naming the unit and the exception's type and message,
never an escaped error: a translator bug must not drop a connection, block a partition or lose
a message (DESIGN: store first, translate second). The reason names the exception's type and
message and where it was raised; quoted literals in the message (Python quotes the offending
value: `invalid literal for int(): '...'`, a KeyError's key) are masked, so no source value,
and no patient data, reaches a dead letter, an ACK or the log.
"""

from __future__ import annotations

import re
import traceback
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from adapters.base import Failure, SourceLocation, Translation
from adapters.errors import MalformedMessage, MappingError
from hub.faults import fault_point
from hub.ingest.source_keys import apply_parts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters.base import AdapterSpec, TranslateContext
    from hub.ports import RawRecord

logger = structlog.get_logger()
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
MESSAGE_CHARS = 300


def describe(exc: BaseException) -> str:
    """`Type: message (package/module.py:line)`, quoted literals in the message masked."""
    message = _QUOTED.sub("'…'", str(exc))[:MESSAGE_CHARS]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({'/'.join(PurePath(frames[-1].filename).parts[-2:])}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def unit_name(record: RawRecord) -> str:
    """How a person finds the message: its file name when it came as a file, else its id."""
    return record.metadata.get("filename") or record.message_id


def whole_message_failure(
    unit: str, reason: str, code: str, location: SourceLocation | None = None
) -> Translation:
    """A Translation whose only content is the failure of the message as a whole."""
    return Translation(
        failures=(
            Failure(
                position="message", reason=reason, code=code, location=location or SourceLocation(file=unit)
            ),
        )
    )


def run_translator(
    adapter: AdapterSpec,
    record: RawRecord,
    payload: bytes,
    mapping: Any,
    ctx: TranslateContext,
    *,
    location: SourceLocation | None = None,
) -> Translation:
    """`adapter.translate(...)`, never raising: an exception becomes a whole-message failure.

    Messages of a batch the archive found already received (`hub.ingest.source_keys`) are left out.
    `location`: where a whole-message failure points (default: the unit's file name or id; HL7
    over MLLP points at the MSH so the ERR segment can name it).
    """
    unit = unit_name(record)
    where = location or SourceLocation(file=unit)
    try:
        fault_point("translator.translate")
        # The archive's dedup verdicts on the messages of a batch apply on every path alike.
        return apply_parts(adapter.translate(record, payload, mapping, ctx), record)
    except Exception as exc:  # noqa: BLE001 - the one rule: nothing a translator raises escapes
        return _failed(exc, record, unit, where)


def run_translator_chunks(
    adapter: AdapterSpec,
    record: RawRecord,
    payload: bytes,
    mapping: Any,
    ctx: TranslateContext,
    *,
    chunk_rows: int,
) -> Iterator[Translation]:
    """`adapter.translate_chunks(...)` under the same rule: what it raises ends it as a failure chunk.

    The tabular readers raise before the first chunk for a file that cannot be read at all (see
    adapters/_files/loop.py), so such a file is one whole-message failure and nothing else.
    """
    if adapter.translate_chunks is None:
        yield run_translator(adapter, record, payload, mapping, ctx)
        return
    unit = unit_name(record)
    try:
        fault_point("translator.translate")
        yield from adapter.translate_chunks(record, payload, mapping, ctx, chunk_rows)
    except Exception as exc:  # noqa: BLE001 - the one rule: nothing a translator raises escapes
        yield _failed(exc, record, unit, SourceLocation(file=unit))


def _failed(exc: Exception, record: RawRecord, unit: str, where: SourceLocation) -> Translation:
    if isinstance(exc, MalformedMessage):
        return whole_message_failure(unit, str(exc), "malformed", where)
    if isinstance(exc, MappingError):
        return whole_message_failure(unit, str(exc), "mapping", where)
    if isinstance(exc, ValidationError):
        reason = f"translator produced an invalid event: {exc}"
        return whole_message_failure(unit, reason, "invalid_event", where)
    # Type only in the log; the reason (dead letter, ACK) gets the masked message and place.
    # No traceback: locals and frames may hold patient data.
    logger.error(
        "translator_crashed",
        system=record.system,
        raw_ref=record.raw_ref,
        unit=unit,
        error_type=type(exc).__name__,
    )
    reason = f"translator error in {unit}: {describe(exc)}"
    return whole_message_failure(unit, reason, "translator_error", where)
