"""Benchmark results table. Each bench module adds rows; bench.run writes bench/results.md."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class Row:
    area: str
    name: str
    value: float
    unit: str
    aim: str = ""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, area: str, name: str, value: float, unit: str, *, aim: str = "", note: str = "") -> None:
        self.rows.append(Row(area, name, value, unit, aim, note))
        print(f"  {area:<12} {name:<52} {value:>12,.1f} {unit:<10} {aim}")

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
            ),
            "",
            "| area | measurement | value | unit | aim | note |",
            "|---|---|---:|---|---|---|",
        ]
        lines += [
            f"| {r.area} | {r.name} | {r.value:,.1f} | {r.unit} | {r.aim} | {r.note} |" for r in self.rows
        ]
        if self.skipped:
            lines += ["", "Not measured in this run:", ""] + [f"- {s}" for s in self.skipped]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.markdown(), encoding="utf-8")
