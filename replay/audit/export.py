"""Auditor export: the ledger entries of a time window or of one subject, with their chain proofs.

The export directory holds:
- `entries.jsonl` or `entries.csv`: one row per entry (topic, partition, seq, offset, event_id,
  subject, type, recorded_at, prev_hash, entry_sha256, record_sha256, entry_hash, entry).
  `entry` is the canonical event JSON: its UTF-8 bytes are exactly the hashed bytes;
  `record_sha256` the hash of the log record it was read from (empty if none).
- `proof.json`: per chain touched, the hash of the entry just before the first exported one
  (`start_prev_hash`), the content hash (entry_sha256 || record_sha256) of every entry from
  there to the head *including those not exported* (hashes only: other subjects' data stays
  out), and the head at export time.
- `README.md` (how to check it by hand) and `verify_export.py` (the check, standard library only).

Folding the content hashes from `start_prev_hash` must land on `head_hash`, and each exported
entry must sit in that fold at its seq; the head can then be compared with a signed checkpoint.
While exporting, every stored hash is checked against the bytes: a damaged chain raises
LedgerTampered instead of producing an export that would not verify.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from projections.audit.ledger import GENESIS_HASH, entries
from replay.audit.checkpoint import CHAIN_RULE
from replay.audit.errors import LedgerTampered
from replay.audit.export_docs import README, VERIFY_SCRIPT
from replay.audit.verify import snapshot, stored_bytes

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import ColumnElement, Connection, Engine, Row

ExportFormat = Literal["jsonl", "csv"]
COLUMNS = (
    "topic", "partition", "seq", "offset", "event_id", "subject", "type", "recorded_at",
    "prev_hash", "entry_sha256", "record_sha256", "entry_hash", "entry",
)  # fmt: skip
_STREAM_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class ExportResult:
    out_dir: Path
    entries: int
    chains: int


def export_window(
    engine: Engine,
    out_dir: Path,
    *,
    from_: datetime | None = None,
    to: datetime | None = None,
    subject: str | None = None,
    fmt: ExportFormat = "jsonl",
    site: str = "main",
    now: datetime | None = None,
) -> ExportResult:
    """Write the entries with `from_` <= recorded_at < `to` (either open) and, if given, of `subject`."""
    for name, value in (("from_", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = _selection(from_, to, subject)
    chains: list[dict[str, Any]] = []
    count = 0
    path = out_dir / f"entries.{fmt}"
    with snapshot(engine) as conn, path.open("w", encoding="utf-8", newline="") as fh:
        write = _writer(fh, fmt)
        c = entries.c
        starts = conn.execute(
            select(c.topic, c.partition, func.min(c.seq))
            .where(*_conditions(from_, to, subject))
            .group_by(c.topic, c.partition)
            .order_by(c.topic, c.partition)
        ).all()
        for topic, partition, first in starts:
            chain, written = _export_chain(
                conn, topic, partition, first=int(first), selected=selected, write=write
            )
            chains.append(chain)
            count += written
    proof = {
        "format": "hub-audit-export/1",
        "site": site,
        "created_at": (now or datetime.now(UTC)).isoformat(),
        "selection": {
            "from": from_.isoformat() if from_ else None,
            "to": to.isoformat() if to else None,
            "subject": subject,
        },
        "chain": CHAIN_RULE,
        "chains": chains,
    }
    (out_dir / "proof.json").write_text(
        json.dumps(proof, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    (out_dir / "README.md").write_text(README, encoding="utf-8")
    (out_dir / "verify_export.py").write_text(VERIFY_SCRIPT, encoding="utf-8")
    return ExportResult(out_dir, count, len(chains))


def _conditions(
    from_: datetime | None, to: datetime | None, subject: str | None
) -> list[ColumnElement[bool]]:
    c = entries.c
    out = []
    if from_ is not None:
        out.append(c.recorded_at >= from_)
    if to is not None:
        out.append(c.recorded_at < to)
    if subject is not None:
        out.append(c.subject == subject)
    return out


def _selection(from_: datetime | None, to: datetime | None, subject: str | None) -> Any:
    def selected(row: Row[Any]) -> bool:
        at: datetime = row.recorded_at
        return (
            (from_ is None or at >= from_)
            and (to is None or at < to)
            and (subject is None or row.subject == subject)
        )

    return selected


def _export_chain(
    conn: Connection, topic: str, partition: int, *, first: int, selected: Any, write: Any
) -> tuple[dict[str, Any], int]:
    """Write the selected entries of one chain from seq `first` on; return its proof and how many."""
    c = entries.c
    query = (
        select(
            c.seq,
            c.offset,
            c.event_id,
            c.subject,
            c.recorded_at,
            c.entry_bytes,
            c.record_hash,
            c.prev_hash,
            c.entry_hash,
        )
        .where(c.topic == topic, c.partition == partition, c.seq >= first)
        .order_by(c.seq)
    )
    contents: list[str] = []
    start_prev: str | None = None
    head = GENESIS_HASH
    written = 0
    for row in conn.execution_options(yield_per=_STREAM_BATCH).execute(query):
        if start_prev is None:
            start_prev = head = row.prev_hash
        data = stored_bytes(row.entry_bytes)
        content = hashlib.sha256(data).hexdigest() + (row.record_hash or "")
        try:
            expected = hashlib.sha256(bytes.fromhex(head) + bytes.fromhex(content)).hexdigest()
        except ValueError:  # a hash column that is not hex any more
            expected = ""
        if row.seq != first + len(contents) or row.prev_hash != head or row.entry_hash != expected:
            raise LedgerTampered(
                f"{topic}[{partition}] seq {row.seq}: stored hashes do not match the entry bytes; "
                "run `hub audit verify`"
            )
        head = expected
        contents.append(content)
        if selected(row):
            text = data.decode("utf-8")
            event = json.loads(text)
            write(
                {
                    "topic": topic,
                    "partition": partition,
                    "seq": row.seq,
                    "offset": row.offset,
                    "event_id": row.event_id,
                    "subject": row.subject,
                    "type": event["type"],
                    "recorded_at": event["recorded_at"],
                    "prev_hash": row.prev_hash,
                    "entry_sha256": content[:64],
                    "record_sha256": row.record_hash or "",
                    "entry_hash": row.entry_hash,
                    "entry": text,
                }
            )
            written += 1
    proof = {
        "topic": topic,
        "partition": partition,
        "from_seq": first,
        "start_prev_hash": start_prev or GENESIS_HASH,
        "content_hashes": contents,
        "head_count": first + len(contents),
        "head_hash": head,
    }
    return proof, written


def _writer(fh: Any, fmt: ExportFormat) -> Any:
    if fmt == "jsonl":

        def write_json(row: dict[str, Any]) -> None:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

        return write_json
    if fmt == "csv":
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        return writer.writerow
    raise ValueError(f"unknown export format {fmt!r}: jsonl or csv")
