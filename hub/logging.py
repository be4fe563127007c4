"""structlog configuration (once, at start) and the PHI redaction backstop.

JSON lines in production; a readable console when attached to a terminal. Adapters never log
payloads; the redaction processor drops deny-listed keys in case one slips through. Libraries
that log through the standard library (uvicorn's "Exception in ASGI application", aiokafka) go
through the same processors, so a crash is one JSON line with the traceback as a structured
`exception` field, not loose text a log shipper splits into lines.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from collections.abc import MutableMapping

# Keys that can carry patient data or secrets. Values are replaced, the key is kept so the
# omission is visible.
DENY_LIST = frozenset(
    {
        "patient",
        "patient_name",
        "patient_id",
        "pid",
        "name",
        "birth_date",
        "dob",
        "id_card",
        "phone",
        "address",
        "payload",
        "raw",
        "row",
        "secret",
        "password",
        "api_key",
        "token",
    }
)


class _StderrPrinter:
    """structlog's final logger: one line to the current `sys.stderr` (see _CurrentStderr for why)."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def _current_stderr_logger(*_args: Any) -> _StderrPrinter:
    return _StderrPrinter()


def redact_phi(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in DENY_LIST.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record is emitted, not when logging was set up.

    A CLI runner or a test harness swaps `sys.stderr` and later closes its stand-in: a handler
    bound to that stand-in would write into a dead stream for the rest of the process.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always the current sys.stderr


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog and stdlib logging. `fmt`: auto | json | console."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    # JSON: the traceback as frames in a field; console: as text a person reads.
    tracebacks = structlog.processors.format_exc_info if use_console else structlog.processors.dict_tracebacks
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        redact_phi,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, tracebacks, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_current_stderr_logger,
        # Not cached: a logger bound once would keep the processors of its first use (a test's
        # capture_logs, a CLI runner's configuration) for the rest of the process.
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries speak at warning and above: their info lines (connections, rebalances) are noise.
    root.setLevel(max(numeric, logging.WARNING))
