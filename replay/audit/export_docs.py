"""The README and the standalone check script written into every auditor export (replay.audit.export)."""

from __future__ import annotations

VERIFY_SCRIPT = '''\
"""Check this audit export with nothing but SHA-256:  python3 verify_export.py [EXPORT_DIR]"""
import csv, hashlib, json, sys
from pathlib import Path

d = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
sha = lambda data: hashlib.sha256(data).digest()
proof = json.loads((d / "proof.json").read_text(encoding="utf-8"))
if (d / "entries.jsonl").exists():
    rows = [json.loads(line) for line in (d / "entries.jsonl").read_text(encoding="utf-8").splitlines()]
else:
    rows = list(csv.DictReader((d / "entries.csv").open(encoding="utf-8", newline="")))
chain, bad = {}, []  # (topic, partition, seq) -> (prev_hash, content hash, entry_hash), from the proof
for c in proof["chains"]:
    h = bytes.fromhex(c["start_prev_hash"])
    for i, content in enumerate(c["content_hashes"]):
        prev, h = h, sha(h + bytes.fromhex(content))
        chain[c["topic"], int(c["partition"]), c["from_seq"] + i] = (prev.hex(), content, h.hex())
    if h.hex() != c["head_hash"]:
        bad.append(f"chain {c['topic']}[{c['partition']}] does not end at its head_hash")
for r in rows:
    entry, event = r["entry"].encode("utf-8"), json.loads(r["entry"])
    hashes = (r["prev_hash"], sha(entry).hex() + (r.get("record_sha256") or ""), r["entry_hash"])
    same = chain.get((r["topic"], int(r["partition"]), int(r["seq"]))) == hashes
    labels = all(str(event[k]) == str(r[k]) for k in ("event_id", "subject", "type", "recorded_at"))
    if not (same and labels and r["entry_sha256"] == sha(entry).hex()):
        bad.append(f"entry {r['topic']}[{r['partition']}] seq {r['seq']}: {r['event_id']} does not verify")
print("\\n".join(bad) or f"OK: {len(rows)} entries in {len(proof['chains'])} chains verify")
sys.exit(1 if bad else 0)
'''

README = """\
# Audit ledger export

This directory is an extract of the integration hub's tamper-evident audit ledger: the events
recorded in a time window (or about one subject), each with the proof that it sits, unchanged,
in the hub's hash chain. You can check it with any SHA-256 tool; `verify_export.py` does it with
the Python standard library only:

    python3 verify_export.py .

It prints `OK: ...` and exits 0, or names every entry or chain that does not verify and exits 1.

## Files

- `entries.jsonl` (or `entries.csv`): one exported entry per line. `entry` is the event exactly
  as it was hashed (canonical JSON; its UTF-8 bytes are the hashed bytes). `topic`, `partition`
  and `seq` give its place: the ledger keeps one chain per topic-partition, numbered from 0.
  `event_id`, `subject`, `type` and `recorded_at` repeat fields of `entry` for convenience.
  `record_sha256` is the SHA-256 of the bus log record the event was read from, exactly as
  stored (value, key, headers, timestamp, offset); the hub's `hub audit verify` compares it with
  the log. It is empty for an entry recorded without its log record.
- `proof.json`: for every chain an exported entry belongs to, `start_prev_hash` (the hash of the
  entry just before the first exported one, or 64 zeros at the start of the chain), the
  content hash of every entry from `from_seq` up to the chain's head (`content_hashes`,
  including entries not exported, of which you get the hash only), and `head_count` /
  `head_hash`, the head at export time.

## The rule

All hashes are SHA-256, written as lowercase hex; `||` joins the raw 32-byte values.

    entry_sha256 = SHA-256(entry bytes)
    content      = entry_sha256 || record_sha256     (just entry_sha256 when record_sha256 is empty)
    entry_hash   = SHA-256(prev_hash || content)
    prev_hash of an entry = entry_hash of the entry before it (32 zero bytes for the first)

## Checking by hand, step by step

1. For an exported entry, compute SHA-256 of the UTF-8 bytes of `entry`. It must equal
   `entry_sha256`.
2. Compute SHA-256 of the 32 bytes of `prev_hash` followed by the 32 bytes of `entry_sha256`
   and the 32 bytes of `record_sha256` (if any). It must equal `entry_hash`. (Steps 1-2 show the
   entry and its hashes belong together.)
3. In `proof.json`, take the chain of the entry. Start with h = `start_prev_hash` and, for each
   value in `content_hashes` in order, set h = SHA-256(h || value). The n-th value is the entry
   with seq `from_seq` + n: just before folding it, h must equal that entry's `prev_hash`, and
   just after, its `entry_hash`; the value itself must equal its `entry_sha256` followed by its
   `record_sha256`.
4. After the last value, h must equal `head_hash`. Every exported entry is then bound to the
   head of its chain: changing, removing or reordering any of them, or any entry in between,
   changes the head.
5. Compare the head with a checkpoint you obtained independently (`hub audit checkpoint`,
   ideally signed: check its Ed25519 signature with the hub's public key first). If the
   checkpoint's `count` for this topic-partition equals `head_count`, its `head_hash` must be
   the same. If it is an older checkpoint with `from_seq` < count <= `head_count`, the value
   of h after the entry with seq count - 1 must equal its `head_hash`.

An export only proves what lies between `start_prev_hash` and the head; the hub's
`hub audit verify --checkpoint FILE` checks the whole ledger from its first entry.
"""
