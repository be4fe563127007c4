"""Benchmark results: each bench module adds rows; bench.run writes bench/results.md and bench/results.json.

A row may carry its peer or ceiling measured in the same run (`peer`, `peer_label`) and the ratio
value/peer; timed runs repeated several times pass `samples`: the row's value is their median and
the JSON keeps the range. A row that did not finish says so (`finished=False`) with the rate so far.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


@dataclass
class Row:
    area: str
    name: str
    value: float
    unit: str
    aim: str = ""
    note: str = ""
    peer: float | None = None
    peer_label: str = ""
    ratio: float | None = None
    median: float | None = None
    low: float | None = None
    high: float | None = None
    repeats: int = 1
    finished: bool = True


def load_note() -> str:
    """The 1-minute load average now: the machine's 2 cores are shared, so every end-to-end row says it."""
    return f"load {os.getloadavg()[0]:.1f} at start"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(
        self,
        area: str,
        name: str,
        value: float,
        unit: str,
        *,
        aim: str = "",
        note: str = "",
        peer: float | None = None,
        peer_label: str = "",
        samples: Sequence[float] | None = None,
        finished: bool = True,
    ) -> Row:
        row = Row(area, name, value, unit, aim, note, peer=peer, peer_label=peer_label, finished=finished)
        if samples:
            row.value = row.median = statistics.median(samples)
            row.low, row.high, row.repeats = min(samples), max(samples), len(samples)
        if peer:
            row.ratio = row.value / peer
        self.rows.append(row)
        extra = f" vs {peer:,.1f} -> {row.ratio:.3f}" if row.ratio is not None and peer else ""
        print(f"  {area:<12} {name:<52} {row.value:>12,.1f} {unit:<10}{extra} {aim}")
        return row

    def skip(self, what: str, why: str) -> None:
        self.skipped.append(f"{what}: {why}")
        print(f"  SKIPPED {what}: {why}")

    def markdown(self) -> str:
        lines = [
            "# Benchmark results",
            "",
            (
                f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
                f"Python {platform.python_version()}, "
                "2 cores. Numbers are from one run of `make bench`; compare runs on the same machine only."
                " Machine-readable: results.json (ranges over repeats, peers, ratios)."
            ),
            "",
            "| area | measurement | value | unit | peer / ceiling (same run) | ratio | aim | note |",
            "|---|---|---:|---|---|---:|---|---|",
        ]
        lines += [self._line(r) for r in self.rows]
        if self.skipped:
            lines += ["", "Not measured in this run:", ""] + [f"- {s}" for s in self.skipped]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _line(r: Row) -> str:
        value = f"{r.value:,.1f}" if r.finished else f"not finished ({r.value:,.1f} so far)"
        if r.repeats > 1 and r.low is not None and r.high is not None:
            value += f" ({r.low:,.1f}–{r.high:,.1f}, {r.repeats} runs)"
        peer = f"{r.peer_label}: {r.peer:,.1f}" if r.peer is not None else ""
        ratio = f"{r.ratio:.3f}" if r.ratio is not None else ""
        return f"| {r.area} | {r.name} | {value} | {r.unit} | {peer} | {ratio} | {r.aim} | {r.note} |"

    def as_json(self) -> dict[str, object]:
        return {
            "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "bench_scale": os.environ.get("BENCH_SCALE", "1"),
            "rows": [asdict(r) for r in self.rows],
            "skipped": self.skipped,
        }

    def write(self, path: Path) -> None:
        """The table at `path` (results.md) and the same rows as JSON beside it (results.json)."""
        path.write_text(self.markdown(), encoding="utf-8")
        path.with_suffix(".json").write_text(
            json.dumps(self.as_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
