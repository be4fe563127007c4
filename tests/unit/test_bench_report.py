"""bench/report.py: results.json carries every row with its peer, ratio and range, beside the table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bench.report import Report

if TYPE_CHECKING:
    from pathlib import Path


def test_json_beside_the_table_has_peer_ratio_median_and_range(tmp_path: Path) -> None:
    report = Report()
    report.add("e2e", "hub vs peer", 0, "msg/s", samples=[300.0, 100.0, 200.0], peer=400.0, peer_label="peer")
    report.add("e2e", "capped run", 12.5, "rows/s", finished=False, note="not finished after 600 s")
    report.skip("kafka", "no broker")

    report.write(tmp_path / "results.md")

    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    first, capped = data["rows"]
    assert (first["value"], first["median"], first["low"], first["high"], first["repeats"]) == (
        200,
        200,
        100,
        300,
        3,
    )
    assert (first["peer"], first["peer_label"], first["ratio"]) == (400.0, "peer", 0.5)
    assert capped["finished"] is False
    assert capped["ratio"] is None
    assert data["skipped"] == ["kafka: no broker"]
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| 200.0 (100.0–300.0, 3 runs) | msg/s | peer: 400.0 | 0.500 |" in table
    assert "not finished (12.5 so far)" in table
