"""Field accounting for HL7 v2: per message, which non-empty fields the translator read, which
the mapping ignores, and which nothing claimed.

A field is claimed when the handler for its message type read it (Segment.read: `field`, `raw`
or `repetitions` was asked for it), whatever it then made of it, or when it is one the handler
reads only if an earlier one is empty (ALTERNATES). Ignored by default (DEFAULT_IGNORED): MSH,
EVN and SFT (housekeeping the ingest layer reads: ids, times, charset), the patient segments the
hub never keeps (PID, PD1, NK1, GT1, IN1-IN3: the translator reads PID-3 for the token only),
set ids, and fields the hub does not keep on purpose (billing amounts, what a device measured).
So are the unread fields of a unit skipped on purpose (a credit line, a charge that is no
tracked consumable, a message naming no device). The mapping's `ignore:` adds segments (`ZPI`)
or fields (`PV1-19`). A message of a type no handler maps is read on purpose by nothing: all
its fields count as ignored.

Counts are per message: `PV1-3: 12` means 12 messages carried a non-empty PV1-3 (two OBX-18 in
one message count once), so a fill rate over `rows` (messages) never passes 100 %.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from adapters.base import SAMPLES_KEPT, FieldAccounting

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adapters.his.mapping import HisMapping
    from adapters.his.tokenize import Message, Segment

# Not noise: what the hub deliberately does not keep. A site's `ignore:` adds to these.
DEFAULT_IGNORED: frozenset[str] = frozenset({
    # Housekeeping the ingest layer reads (ids, times, charset), and patient data.
    "MSH", "EVN", "SFT", "PID", "PD1", "NK1", "GT1", "IN1", "IN2", "IN3",
    # Set IDs: a segment's sequence number within its group, not data.
    "PV1-1", "FT1-1", "OBR-1", "OBX-1", "PRT-1", "NTE-1", "IVT-1", "PKG-1", "DG1-1", "PR1-1", "ZFT-1",
    "PV1-2",  # patient class
    "PV1-7",  # attending doctor
    "ORC-1",  # order control
    "PRT-2",  # PRT action code
    "PRT-4",  # participation (read for devices; a charge's PRT is its UDI)
    "FT1-11", "FT1-12", "FT1-22",  # amounts and unit cost: billing (prices come from the item master)
    "ZFT-2",  # the UDI's issuing agency label (the UDI says it itself)
    # What a device measured (value type, observation, value, units, status, time): the hub
    # records that it was used, not the observation; MDC-coded device observations (IHE PCD) are
    # read by adapters/his/telemetry.py, which claims them.
    "OBX-2", "OBX-3", "OBX-5", "OBX-6", "OBX-11", "OBX-14",
    "EQU-4",  # alert level
    "MFI", "MFE-2", "MFE-5",  # master file header, event id, primary key type
    "ITM-6", "ITM-7", "ITM-11", "ITM-14", "PKG-3", "PKG-4",  # item status and packaging flags
})  # fmt: skip
# Fields a handler reads only when an earlier one is empty, or past a check that can stop it
# (FT1-5 when FT1-4 is empty, FT1-8 when FT1-7.2 is, PV1-3 when neither FT1-13 nor FT1-16 names
# the place): claimed by the handler, whether or not this message needed them.
ALTERNATES: dict[str, frozenset[str]] = {
    "DFT": frozenset({
        "FT1-2", "FT1-4", "FT1-5", "FT1-7", "FT1-8", "FT1-10", "FT1-13", "FT1-16", "FT1-23", "FT1-25",
        "PR1-3", "PRT-10", "PRT-16", "PRT-19", "PRT-20", "PV1-3",
    }),
    "ORU": frozenset({"OBR-2", "OBR-3", "OBR-4", "OBR-7", "ORC-2", "PV1-3"}),
    "ORM": frozenset({"OBR-2", "OBR-3", "OBR-4", "OBR-7", "ORC-2", "PV1-3"}),
    "OMG": frozenset({"OBR-2", "OBR-3", "OBR-4", "OBR-7", "ORC-2", "PV1-3"}),
    "ESU": frozenset({"EQU-1", "EQU-2", "EQU-3", "EQU-5"}),
    "MFN": frozenset({"MFE-1", "MFE-3", "MFE-4", "ITM-1"}),
}  # fmt: skip
# Segments that carry no data of their own (batch envelopes are split off before this).
_STRUCTURAL = frozenset({"FHS", "FTS", "BHS", "BTS"})


def ignored_names(mapping: HisMapping) -> frozenset[str]:
    return DEFAULT_IGNORED | {name.strip().upper() for name in mapping.ignore}


_CLAIMED, _UNCLAIMED, _IGNORED = 0, 1, 2  # a field seen twice in a message keeps the smallest


@functools.lru_cache(maxsize=1024)
def _names(segment_id: str, count: int) -> tuple[str, ...]:
    """`SEG-n` for n in 0..count-1 (index 0 unused): made once per segment id and length."""
    return tuple(f"{segment_id}-{n}" for n in range(count))


def account_message(
    message: Message,
    mapping: HisMapping,
    *,
    mapped: bool,
    ignored: frozenset[str] | None = None,
    passed: Iterable[Segment] = (),
) -> FieldAccounting:
    """The accounting of one translated (`mapped`) or skipped message; `passed`: segments of
    units skipped on purpose (a credit line, a charge that is no tracked consumable)."""
    ignore = ignored_names(mapping) if ignored is None else ignored
    skipped = {id(s) for s in passed}
    alternates = ALTERNATES.get(message.segment_list[0].field(9, 1).strip().upper(), frozenset())
    seen: dict[str, int] = {}  # field name -> claim; claimed wins, then unclaimed
    samples: dict[str, list[str]] = {}
    for segment in message.segment_list:
        sid = segment.id
        if sid in _STRUCTURAL:
            continue
        fields = segment.fields
        names = _names(sid, len(fields))
        whole = sid in ignore or not mapped or id(segment) in skipped
        read = segment.read if mapped else ()
        for n in range(3 if sid == "MSH" else 1, len(fields)):  # MSH-1 and MSH-2: the delimiters
            value = fields[n]
            if not value or value == '""' or value.isspace():
                continue
            name = names[n]
            if n in read or (mapped and name in alternates):
                claim = _CLAIMED
            elif whole or name in ignore:
                claim = _IGNORED
            else:
                claim = _UNCLAIMED
                kept = samples.setdefault(name, [])
                text = value.strip()[:80]
                if len(kept) < SAMPLES_KEPT and text not in kept:
                    kept.append(text)
            if claim < seen.get(name, _IGNORED + 1):
                seen[name] = claim
    counts: tuple[dict[str, int], ...] = ({}, {}, {})
    for name, claim in seen.items():
        counts[claim][name] = 1
    claimed, unclaimed, ignored_counts = counts
    return FieldAccounting(
        rows=1,
        claimed=claimed,
        ignored=ignored_counts,
        unclaimed=unclaimed,
        fields=dict(claimed),
        samples={k: tuple(v) for k, v in samples.items() if k in unclaimed},
    )
