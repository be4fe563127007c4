"""Opt-in strict validation of a message against the HL7 standard, with hl7apy.

Slow (tens of milliseconds per message) and thorough: cardinalities, data types, table values,
lengths. A channel turns it on when its sender must be held to the standard; the hot path
never calls it. hl7apy stops at the first error unless asked for a report file, so the report
goes to a temporary file and is read back: every problem, not just the first.

Problems never quote a value: hl7apy writes table warnings as "Value X not in table", and X can
be a patient's sex or race code; parse errors can quote a wrapped line of clinical text.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException, UnsupportedVersion
from hl7apy.parser import parse_message
from hl7apy.validation import Validator

from adapters.errors import MalformedMessage
from adapters.his.tokenize import segment_lines, tokenise

SUPPORTED_VERSIONS = (
    "2.1",
    "2.2",
    "2.3",
    "2.3.1",
    "2.4",
    "2.5",
    "2.5.1",
    "2.6",
    "2.7",
    "2.8",
    "2.8.1",
    "2.8.2",
)
_VALUE = re.compile(r"^(Warning|Error): Value .*? not in table (\S+) in element (.*)$")
_PREFIX = re.compile(r"^(Warning|Error): ")


def validate_strict(text: str) -> list[str]:
    """Every problem hl7apy finds in one decoded message, as `error: ...` / `warning: ...` lines.

    The tokeniser's structure check runs first: hl7apy's tolerant parser skips a line that is
    not a segment (a line break inside a field) without a word.
    """
    message = "\r".join(segment_lines(text.lstrip("\ufeff \t\r\n")))
    try:
        tokenise(message)
    except MalformedMessage as exc:
        return [f"error: {exc}"]
    try:
        parsed = parse_message(message, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except UnsupportedVersion:
        return [
            f"error: hl7apy validates versions {', '.join(SUPPORTED_VERSIONS)} only; MSH-12 is none of them"
        ]
    except HL7apyException as exc:
        return [f"error: hl7apy cannot parse the message ({type(exc).__name__})"]
    with tempfile.TemporaryDirectory(prefix="hl7-validate-") as folder:
        report = Path(folder) / "report.txt"
        # On errors hl7apy raises the first one; the report file holds it and every other one.
        with contextlib.suppress(HL7apyException):
            Validator.validate(parsed, report_file=str(report))
        lines = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    return [_redact(line) for line in lines if line.strip()]


def _redact(line: str) -> str:
    match = _VALUE.match(line)
    if match:
        return f"{match[1].lower()}: a value is not in table {match[2]} in element {match[3]}"
    return _PREFIX.sub(lambda m: f"{m[1].lower()}: ", line)
