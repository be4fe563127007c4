"""SIGKILL under MLLP, file and webhook traffic: nothing ACKed is lost, nothing applied twice, no webhook event lost.

The fast case (3 kills) runs in the default suite; the soak case (20 kills) runs in `make soak`.
Figures go to tests/reliability/figures/ and RELIABILITY.md quotes the last soak run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.killloop import Figures, kill_loop, write_figures

pytestmark = pytest.mark.slow


def check(figures: Figures) -> None:
    assert figures.messages_acked == figures.messages_sent  # every sender was answered in the end
    assert figures.acked_not_present == 0
    assert figures.messages_present == figures.messages_acked
    assert figures.applied_twice == 0
    assert figures.file_processed
    assert figures.webhook_events_on_log > 0
    assert figures.webhook_events_lost == 0
    assert len(figures.restart_to_processing_s) == figures.kills
    assert figures.clean_stop_exit_code == 0
    assert figures.clean_stop_error_lines == []


def test_three_kills(tmp_path: Path) -> None:
    figures = kill_loop(tmp_path, kills=3, messages=60, ledger_rows=100, seed=9, limit_s=240)
    write_figures(figures, "kill_loop_fast")
    check(figures)


@pytest.mark.soak
@pytest.mark.timeout(1200)  # 20 restarts of `hub serve`; the loop itself stops at 900 s
def test_soak_kills(tmp_path: Path) -> None:
    kills = int(os.environ.get("HUB_SOAK_KILLS", "20"))
    seed = int(os.environ.get("HUB_SOAK_SEED", "2026"))
    figures = kill_loop(tmp_path, kills=kills, messages=1200, ledger_rows=3000, seed=seed, limit_s=900)
    write_figures(figures, "kill_loop_soak")
    check(figures)
