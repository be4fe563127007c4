"""What `hub audit verify` found: findings (a kind of tampering at a position) and the report."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from replay.audit.chain import Tamper


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence of tampering, at a position in one chain (or the ledger as a whole)."""

    kind: Tamper
    topic: str | None
    partition: int | None
    seq: int | None
    offset: int | None
    event_id: str | None
    detail: str
    last_seq: int | None = None  # the finding covers seq..last_seq

    def where(self) -> str:
        place = "ledger" if self.topic is None else f"{self.topic}[{self.partition}]"
        if self.seq is not None:
            place += f" seq {self.seq}"
            if self.last_seq not in (None, self.seq):
                place += f"..{self.last_seq}"
        if self.offset is not None:
            place += f" offset {self.offset}"
        if self.event_id is not None:
            place += f" event {self.event_id}"
        return place


@dataclass(slots=True)
class VerifyReport:
    """What `verify` checked and found. `intact` when nothing was found."""

    chains: int = 0
    entries: int = 0
    findings: list[Finding] = field(default_factory=list)
    checkpoint_checked: bool = False
    seals_checked: int = 0  # signed checkpoints the ledger keeps, checked (None of them: unsealed)
    log_records: int | None = None  # log records compared byte for byte (None: the log was not read)
    elapsed_s: float = 0.0

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        """The first changed entry: the earliest finding of the first damaged chain, by position.

        One naming a single entry wins over one naming a stretch (a checkpoint only bounds where
        a rewrite began; the log comparison names the entry); ledger-wide findings come last.
        """
        if not self.findings:
            return None
        return min(self.findings, key=lambda f: (f.topic is None, f.last_seq not in (None, f.seq), order(f)))

    def add(self, findings: Sequence[Finding]) -> None:
        """Add findings made elsewhere (the log comparison), keeping the report in position order.

        One that places a finding already here (same kind, chain and seq, now with the log offset
        and event id, e.g. the first entry of a deleted tail) completes it instead of repeating it.
        """
        unplaced = {
            (f.kind, f.topic, f.partition, f.seq): i for i, f in enumerate(self.findings) if f.offset is None
        }
        for finding in findings:
            i = unplaced.pop((finding.kind, finding.topic, finding.partition, finding.seq), None)
            if i is None:
                self.findings.append(finding)
            else:
                self.findings[i] = replace(self.findings[i], offset=finding.offset, event_id=finding.event_id)
        self.findings.sort(key=order)


def order(f: Finding) -> tuple[str, int, int, int, str]:
    """Chain, then position: the log offset when known (seq and offset rise together), else the seq."""
    position = f.offset if f.offset is not None else (f.seq or 0)
    partition = f.partition if f.partition is not None else -1
    return (f.topic or "", partition, position, f.seq or 0, f.kind.value)
