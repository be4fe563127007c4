"""Records fetched by aiokafka as the hub's BusRecords, at the cost of one tuple each.

aiokafka's `getmany` builds a `ConsumerRecord` (a dataclass of eleven fields) for every record it
unpacks. Converting that into a BusRecord made two objects per record and kept the Kafka path at
about three quarters of raw aiokafka's rate, consumer-CPU-bound. So every consumer the bus opens
has aiokafka's fetcher unpack straight into BusRecords: `unpack_into_bus_records` gives the
fetcher a buffer of fetched partitions that, as each fetch response is put in it, points that
response's record iterator at `bus_record` in place of aiokafka's `_consumer_record`. All else
stays aiokafka's: CRC checks, control and aborted batches, positions, prefetching.

This leans on aiokafka internals (`AIOKafkaConsumer._fetcher`, `Fetcher._records`,
`FetchResult._partition_records`, `PartitionRecords._consumer_record(tp, record)`), checked before
use: where they differ (another aiokafka version), the install says so in the log and returns
False, and the consumer converts aiokafka's ConsumerRecords with the same `bus_record`: slower,
never different. tests/unit/bus/test_kafka_bus.py fails when the fast path stops being taken.
"""

from __future__ import annotations

import collections
import inspect
from typing import TYPE_CHECKING, Protocol

import structlog
from aiokafka.consumer.fetcher import PartitionRecords

from hub.ports import BusRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from hub.ports import Headers

logger = structlog.get_logger()

_new_record = tuple.__new__  # BusRecord's fields in order, without its Python-level __new__ (half the cost)


class Fetched(Protocol):
    """What `bus_record` reads: aiokafka's unpacked record (fast path) or its ConsumerRecord."""

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


def bus_record(tp: TopicPartition, rec: Fetched) -> BusRecord:
    """The hub's record for one fetched record of partition `tp`; called once per record, so lean."""
    raw_key = rec.key
    key: str | None = None
    if raw_key is not None:
        # Keys are hub-written UTF-8; a foreign undecodable key must not block a partition, and the
        # key has already done its job (partitioning) by the time a consumer sees it.
        try:
            key = raw_key.decode()
        except UnicodeDecodeError:
            key = raw_key.decode("utf-8", "replace")
    value = rec.value
    headers: Headers | Sequence[tuple[str, bytes | None]] = rec.headers
    if headers:
        headers = tuple(headers)
        for _, v in headers:
            if v is None:  # a null header value (possible in Kafka, never written by the hub)
                headers = tuple((n, b"" if v is None else v) for n, v in headers)
                break
    else:
        headers = ()
    return _new_record(
        BusRecord,
        (
            tp.topic,
            tp.partition,
            rec.offset,
            key,
            b"" if value is None else value,  # None is a compaction tombstone
            headers,
            rec.timestamp,
        ),
    )


def _hook_fits() -> bool:
    """aiokafka still unpacks each record through `PartitionRecords._consumer_record(tp, record)`."""
    method = getattr(PartitionRecords, "_consumer_record", None)
    if method is None or hasattr(PartitionRecords, "__slots__"):
        return False
    return list(inspect.signature(method).parameters) == ["self", "tp", "record"]


_HOOK_FITS = _hook_fits()


class _BusRecordBuffer(collections.OrderedDict[object, object]):
    """aiokafka's buffer of fetched partitions; each fetch response put in unpacks into BusRecords."""

    def __setitem__(self, tp: object, result: object) -> None:
        records = getattr(result, "_partition_records", None)  # a FetchResult (a FetchError has none)
        if isinstance(records, PartitionRecords):
            records._consumer_record = bus_record  # see the module docstring
        super().__setitem__(tp, result)


def unpack_into_bus_records(consumer: AIOKafkaConsumer) -> bool:
    """Have a started consumer's fetcher build BusRecords; False (and a log line) where it cannot."""
    fetcher = getattr(consumer, "_fetcher", None)
    buffered = getattr(fetcher, "_records", None)
    if fetcher is None or not _HOOK_FITS or type(buffered) is not collections.OrderedDict:
        logger.warning(
            "kafka_fast_unpack_unavailable",
            hint="this aiokafka version unpacks records differently; the hub converts them instead (slower)",
        )
        return False
    fetcher._records = _BusRecordBuffer(buffered)  # re-puts (and so converts) what is already buffered
    return True
