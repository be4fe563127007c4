"""hub.faults: armed points fail at their nth hit, unarmed ones do nothing, a bad spec is refused by name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import faults
from hub.faults import FaultInjected, arm, fault_point, parse

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    arm(None)
    yield
    arm(None)


def test_unarmed_points_do_nothing() -> None:
    for name in faults.POINTS:
        fault_point(name)


def test_an_armed_raise_fires_once_at_its_nth_hit() -> None:
    arm("projection.before_commit:raise:3,translator.translate")
    fault_point("projection.before_commit")
    fault_point("projection.before_commit")
    fault_point("ingest.after_store")  # not armed
    with pytest.raises(FaultInjected, match=r"projection.before_commit.*hit 3"):
        fault_point("projection.before_commit")
    fault_point("projection.before_commit")  # once only: the retry after it goes through
    with pytest.raises(FaultInjected, match=r"translator\.translate"):
        fault_point("translator.translate")


@pytest.mark.parametrize(
    "spec",
    [
        "nowhere",
        "translator.translate:explode",
        "translator.translate:raise:0",
        "ingest.after_store:kill:x:y",
    ],
)
def test_a_bad_spec_is_refused_naming_the_entry(spec: str) -> None:
    with pytest.raises(ValueError, match="HUB_FAULT_POINTS"):
        parse(spec)


def test_parse_defaults_to_raise_at_the_first_hit() -> None:
    assert parse(" translator.translate , ingest.after_store:kill:2") == {
        "translator.translate": ("raise", 1),
        "ingest.after_store": ("kill", 2),
    }


def test_kill_ends_the_process_with_sigkill_armed_from_the_environment() -> None:
    code = "from hub.faults import fault_point\nfault_point('ingest.after_store')\nprint('survived')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"HUB_FAULT_POINTS": "ingest.after_store:kill", "PYTHONPATH": str(REPO), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -9
    assert "survived" not in result.stdout
