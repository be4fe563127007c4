"""The one error rule: nothing a translator raises escapes; it becomes a failure naming unit and exception."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from adapters.base import TranslateContext, Translation
from adapters.errors import MalformedMessage, MappingError
from adapters.hrp import ADAPTER
from hub.ports import RawRecord
from hub.translation.safe import run_translator

RECORD = RawRecord(
    raw_ref="hrp:abc",
    system="hrp",
    site="main",
    message_id="ledger.csv",
    sha256="0" * 64,
    size=1,
    transport="file",
    received_at=datetime(2024, 6, 12, tzinfo=UTC),
    metadata={"filename": "ledger.csv"},
)
CTX = TranslateContext(site="main", tz=ZoneInfo("Asia/Shanghai"), adapter_version="1", mapping_version="m1")


class Strict(BaseModel):
    n: int


def invalid_event() -> Exception:
    try:
        Strict(n="not a number")  # type: ignore[arg-type]
    except Exception as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("error", "code", "names"),
    [
        (MalformedMessage("no header row"), "malformed", "no header row"),
        (MappingError("column 资产编号 missing"), "mapping", "资产编号"),
        (invalid_event(), "invalid_event", "validation error"),
        (RuntimeError("index out of range"), "translator_error", "RuntimeError: index out of range"),
        (ZeroDivisionError("division by zero"), "translator_error", "ZeroDivisionError"),
    ],
)
def test_any_exception_becomes_one_whole_message_failure(error: Exception, code: str, names: str) -> None:
    def translate(*_args: Any) -> Translation:
        raise error

    result = run_translator(replace(ADAPTER, translate=translate), RECORD, b"x", None, CTX)
    assert result.events == ()
    (failure,) = result.failures
    assert (failure.position, failure.code) == ("message", code)
    assert names in failure.reason
    assert failure.location.file == "ledger.csv"


def test_a_translation_passes_through() -> None:
    translation = Translation(units=3)
    adapter = replace(ADAPTER, translate=lambda *_a: translation)
    assert run_translator(adapter, RECORD, b"x", None, CTX) is translation


def test_values_quoted_by_an_exception_are_masked_and_the_place_is_named() -> None:
    def translate(*_args: Any) -> Translation:
        return Translation(units=int("王小明"))

    result = run_translator(replace(ADAPTER, translate=translate), RECORD, b"x", None, CTX)
    (failure,) = result.failures
    assert "王小明" not in failure.reason
    assert "ValueError: invalid literal for int() with base 10: '…'" in failure.reason
    assert "hub/test_safe_translate.py:" in failure.reason
