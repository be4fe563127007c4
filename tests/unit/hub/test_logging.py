"""Logging as production runs it: JSON lines, library errors included, tracebacks as fields."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _run(code: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=True
    )
    return [json.loads(line) for line in done.stderr.splitlines() if line.strip()]


def test_a_library_crash_is_one_json_line_with_the_traceback_as_a_field() -> None:
    """uvicorn's "Exception in ASGI application" (stdlib logging) comes out as JSON with its frames."""
    lines = _run(
        """
        import logging
        from hub.logging import configure_logging
        configure_logging("json", "info")
        try:
            1 / 0
        except ZeroDivisionError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        """
    )
    assert len(lines) == 1
    (line,) = lines
    assert line["event"] == "Exception in ASGI application"
    assert line["level"] == "error"
    assert line["logger"] == "uvicorn.error"
    exception = line["exception"]
    assert isinstance(exception, list)
    assert exception[0]["exc_type"] == "ZeroDivisionError"
    assert exception[0]["frames"]


def test_info_lines_print_at_info_and_phi_keys_are_redacted() -> None:
    """The production level prints info; a deny-listed key never shows its value."""
    lines = _run(
        """
        import structlog
        from hub.logging import configure_logging
        configure_logging("json", "info")
        structlog.get_logger().info("raw_stored", raw_ref="his:1", patient_name="张三")
        structlog.get_logger().debug("not_shown")
        """
    )
    assert [line["event"] for line in lines] == ["raw_stored"]
    assert lines[0]["patient_name"] == "[redacted]"


def test_library_info_lines_stay_quiet() -> None:
    """A library's info chatter (aiokafka's connections) is not printed; its warnings are."""
    lines = _run(
        """
        import logging
        from hub.logging import configure_logging
        configure_logging("json", "info")
        logging.getLogger("aiokafka").info("connected")
        logging.getLogger("aiokafka").warning("coordinator dead")
        """
    )
    assert [line["event"] for line in lines] == ["coordinator dead"]
