"""Readings -> blocks: one `facility.meter_readings_recorded` per series, kind and place of a chunk.

Pure. A translator adds each reading that landed (with its template: the meter, quantity, kind,
unit, register maximum and place it shares with its series) and takes the blocks at the end of a
chunk. A block's readings are in time order; its id is uuid5 over the raw message's content hash
and the block's place in it (series, first and last time, count, first line), so the same file
gives the same events, and a corrected resend (another value at the same time) new ones the read
model applies over the old readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING

from adapters.base import Emitted, SourceLocation
from schemas.facility import FacilityMeterReadingsRecorded, MeterReadingsPayload
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from schemas.envelope import Source
    from schemas.facility import FacilityMeterRead, MeterReadPayload

SYSTEM = "bms"

# What a block's readings share: subject, kind, unit, interval, register maximum and place.
BlockKey = tuple[object, ...]


def block_key(subject: str, p: MeterReadPayload) -> BlockKey:
    return (subject, p.kind, p.unit, p.interval_minutes, p.register_max, p.place)


@dataclass(slots=True)
class _Open:
    subject: str
    template: MeterReadPayload
    position: str
    line: int | None
    samples: list[tuple[datetime, Decimal, tuple[str, ...]]] = field(default_factory=list)


class Blocks:
    """The blocks of one chunk, filled reading by reading."""

    def __init__(self, source: Source, received_at: datetime, filename: str, sha256: str) -> None:
        self.source, self.received_at, self.filename, self.sha256 = source, received_at, filename, sha256
        self._slots: dict[BlockKey, int] = {}
        self._series: list[tuple[str, MeterReadPayload]] = []
        self._open: list[_Open | None] = []

    def slot(self, subject: str, template: MeterReadPayload) -> int:
        """The block a reading like `template` goes to (a number, cheap to add to many times)."""
        key = block_key(subject, template)
        found = self._slots.get(key)
        if found is None:
            found = self._slots[key] = len(self._open)
            self._series.append((subject, template))
            self._open.append(None)
        return found

    def add_event(self, event: FacilityMeterRead, position: str, line: int | None) -> int:
        """Add a reading built as a single event; returns its block's slot (to add more like it)."""
        p = event.payload
        slot = self.slot(event.subject, p)
        self.add(slot, event.occurred_at, p.value, tuple(p.quality), where=position, line=line)
        return slot

    def add(
        self,
        slot: int,
        at: datetime,
        value: Decimal,
        quality: tuple[str, ...],
        *,
        where: str,
        line: int | None,
    ) -> None:
        """One reading of the block `slot`, with its quality flags and where in the source it is."""
        block = self._open[slot]
        if block is None:
            subject, template = self._series[slot]
            block = self._open[slot] = _Open(subject, template, where, line)
        block.samples.append((at, value, quality))

    def add_line(self, slot: int, at: datetime, value: Decimal, quality: tuple[str, ...], line: int) -> None:
        """`add` for a reading of an export's `line` (its position named only if it opens a block)."""
        block = self._open[slot]
        if block is None:
            subject, template = self._series[slot]
            block = self._open[slot] = _Open(subject, template, f"line:{line}", line)
        block.samples.append((at, value, quality))

    def take(self) -> list[Emitted]:
        """The chunk's blocks (in the order their series first appeared); then forget them.

        Slots stay valid: a later chunk's readings of the same series open a new block there."""
        out = [self._event(block) for block in self._open if block is not None]
        self._open = [None] * len(self._open)
        return out

    def _event(self, block: _Open) -> Emitted:
        samples = sorted(block.samples, key=itemgetter(0))
        t = block.template
        first, last = samples[0][0].isoformat(), samples[-1][0].isoformat()
        # The file's content and the block's place in it: the same file gives the same ids, a
        # corrected one new ids (applied over the old readings, which are keyed by series and time).
        position = f"{block.subject}:{t.kind}:{first}:{last}:{len(samples)}:{block.position}"
        event = FacilityMeterReadingsRecorded(
            event_id=event_id_for(SYSTEM, f"raw:{self.sha256}", position),
            occurred_at=samples[-1][0],
            recorded_at=self.received_at,
            source=self.source,
            subject=block.subject,
            payload=MeterReadingsPayload(
                meter_id=t.meter_id,
                quantity=t.quantity,
                kind=t.kind,
                unit=t.unit,
                interval_minutes=t.interval_minutes,
                register_max=t.register_max,
                place=t.place,
                readings=[(at, value) for at, value, _ in samples],
                quality={i: list(q) for i, (_, _, q) in enumerate(samples) if q},
            ),
        )
        location = SourceLocation(file=self.filename, line=block.line)
        return Emitted(event=event, position=f"{block.position}#{block.subject}", location=location)
