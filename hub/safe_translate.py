"""The one way the hub runs a translator, with the one error rule.

Every path that translates (the translation worker, MLLP ingest, HTTP/FHIR ingest, the CLI's
dry run) calls `run_translator`. Whatever the translator raises becomes a whole-message
`Failure` (a dead letter once recorded) naming the unit and the exception's type and message,
never an escaped error: a translator bug must not drop a connection, block a partition or lose
a message (DESIGN: store first, translate second). Reasons carry the exception text, which our
translators write without field values from patient segments; the log gets the type only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from adapters.base import Failure, SourceLocation, Translation
from adapters.errors import MalformedMessage, MappingError
from hub.source_keys import apply_parts

if TYPE_CHECKING:
    from adapters.base import AdapterSpec, TranslateContext
    from hub.ports import RawRecord

logger = structlog.get_logger()


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

    Messages of a batch the archive found already received (`hub.source_keys`) are left out.
    `location`: where a whole-message failure points (default: the unit's file name or id; HL7
    over MLLP points at the MSH so the ERR segment can name it).
    """
    unit = unit_name(record)
    where = location or SourceLocation(file=unit)
    try:
        # The archive's dedup verdicts on the messages of a batch apply on every path alike.
        return apply_parts(adapter.translate(record, payload, mapping, ctx), record)
    except MalformedMessage as exc:
        return whole_message_failure(unit, str(exc), "malformed", where)
    except MappingError as exc:
        return whole_message_failure(unit, str(exc), "mapping", where)
    except ValidationError as exc:
        return whole_message_failure(
            unit, f"translator produced an invalid event: {exc}", "invalid_event", where
        )
    except Exception as exc:  # noqa: BLE001 - the one rule: nothing a translator raises escapes
        # Type only in the log (an exception's text can quote the payload); the reason keeps the
        # message for the person fixing the translator, in the dead letter next to the raw ref.
        logger.error(  # noqa: TRY400 - no traceback: locals and frames may hold patient data
            "translator_crashed",
            system=record.system,
            raw_ref=record.raw_ref,
            unit=unit,
            error_type=type(exc).__name__,
        )
        return whole_message_failure(
            unit, f"translator error in {unit}: {type(exc).__name__}: {exc}", "translator_error", where
        )
