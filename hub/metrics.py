"""Prometheus metrics of the hub: durable counts read at scrape time, latencies per process.

Why two kinds. `hub serve --role` splits ingest, translation, projection and the API over
processes (and nodes sharing one archive), and a process restarts now and then: in-memory
counters would be per process, reset on restart, and only the API process is scraped. So every
count that must add up (messages received, translated, dead-lettered, bytes, ACK codes, rows,
unclaimed cells per channel) is read at scrape time from the raw archive's channel counts
(hub.ingest.channel_counts: kept by triggers in each commit, whatever process wrote). They are
the same from every API replica: scrape one, or aggregate replicas with max(), not sum().
Latencies (archive commit, translation) are histograms of the process that measured them, in
its own registry (`ProcessMetrics`), exposed by that process's /metrics when it serves the API
(the default single process does all of it); Prometheus sums histograms across instances.

Label cardinality is bounded by configuration: `system` (the adapters), `transport` (mllp,
file, http, topic), `code` (AA, AE, AR), `group` (consumer groups), `status`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from pathlib import Path

    from hub.channels import Channel

# Archive commits are a few ms (one fsync); translation of one message is 0.1-10 ms for HL7
# and up to minutes for a large export file.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TRANSLATE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0)


class ProcessMetrics:
    """This process's latencies and gauges, in a registry of its own (never the global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commit_seconds = Histogram(
            "hub_archive_commit_seconds",
            "Raw archive group commits: time to store a batch durably (the wait before an ACK)",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.commit_messages = Histogram(
            "hub_archive_commit_messages",
            "Messages stored per group commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )
        self.translate_seconds = Histogram(
            "hub_translate_seconds",
            "Translating one raw message (to its status stored, for the translation worker)",
            ["system"],
            buckets=TRANSLATE_BUCKETS,
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "hub_sse_clients", "Open server-sent event streams (GET /events)", registry=self.registry
        )

    def observe_commit(self, seconds: float, messages: int) -> None:
        self.commit_seconds.observe(seconds)
        if messages:
            self.commit_messages.observe(messages)

    def observe_translate(self, system: str, seconds: float) -> None:
        self.translate_seconds.labels(system=system).observe(seconds)


@dataclass(frozen=True, slots=True)
class OpsSnapshot:
    """What one scrape reads from the durable stores (see the module docstring)."""

    channels: list[Channel]
    dead_letters_open: dict[str, int] = field(default_factory=dict)
    consumer_lag: dict[str, int] = field(default_factory=dict)  # by consumer group
    outbox_backlog: int | None = None
    ledger_head: dict[str, int] = field(default_factory=dict)  # topic -> entries
    archive_bytes: int | None = None
    webhooks: dict[str, int] = field(default_factory=dict)  # subscriptions by status
    webhook_failing: int = 0  # consecutive failures summed over subscriptions
    # POST attempts of the last hour by outcome, from the delivery log: (count, mean ms, max ms).
    webhook_recent: dict[str, tuple[int, float, float]] = field(default_factory=dict)


OpsSource = Callable[[], Awaitable[OpsSnapshot]]
ChannelSource = Callable[[], Awaitable[list["Channel"]]]

_CHANNEL_COUNTERS = (
    ("received", "hub_channel_received", "Raw messages archived (distinct; exact resends not counted)"),
    ("bytes", "hub_channel_received_bytes", "Bytes of the raw messages archived"),
    ("resends", "hub_channel_resends", "Exact resends answered from the archive"),
    ("events", "hub_channel_events", "Canonical events the channel's messages became"),
    ("rows_failed", "hub_channel_rows_dead_lettered", "Units (rows, segments) dead-lettered"),
    ("ever_translated", "hub_channel_translated", "Translations that ended translated (incl. archived only)"),
    ("ever_dead_lettered", "hub_channel_dead_lettered", "Translations that ended with dead letters"),
)
_CHANNEL_STATUSES = ("pending", "translated", "archived_only", "dead_lettered")


class DurableCollector(Collector):
    """Turns an OpsSnapshot (read just before `generate_latest`) into metric families."""

    def __init__(self) -> None:
        self.snapshot: OpsSnapshot | None = None

    def collect(self) -> Iterator[Metric]:  # noqa: C901, PLR0912  (one family after another)
        snap = self.snapshot
        if snap is None:
            return
        labels = ["system", "transport"]
        channels = [c for c in snap.channels if c.transport != "topic"]
        for attr, name, doc in _CHANNEL_COUNTERS:
            family = CounterMetricFamily(name, doc, labels=labels)
            for ch in channels:
                family.add_metric([ch.system, ch.transport], getattr(ch.counts, attr))
            yield family
        messages = GaugeMetricFamily(
            "hub_channel_messages",
            "Archived messages by where they are now (pending, translated, archived_only, dead_lettered)",
            labels=[*labels, "status"],
        )
        acks = CounterMetricFamily("hub_channel_acks", "HL7 ACKs answered (MSA-1)", labels=[*labels, "code"])
        unclaimed = GaugeMetricFamily(
            "hub_channel_unclaimed_cells",
            "Non-empty source cells no mapping claimed, in the channel's archived messages",
            labels=labels,
        )
        state = GaugeMetricFamily(
            "hub_channel_up", "1 when a live process reports the channel's listener up", labels=labels
        )
        last = GaugeMetricFamily(
            "hub_channel_last_received_timestamp_seconds", "When the channel last received", labels=labels
        )
        for ch in channels:
            key = [ch.system, ch.transport]
            for status in _CHANNEL_STATUSES:
                messages.add_metric([*key, status], getattr(ch.counts, status))
            if ch.transport == "mllp" or ch.counts.ack_aa or ch.counts.ack_ae or ch.counts.ack_ar:
                for code in ("AA", "AE", "AR"):
                    acks.add_metric([*key, code], getattr(ch.counts, f"ack_{code.lower()}"))
            unclaimed.add_metric(key, ch.counts.unclaimed_cells)
            if ch.counts.last_received_at is not None:
                last.add_metric(key, ch.counts.last_received_at.timestamp())
        for ch in snap.channels:
            state.add_metric([ch.system, ch.transport], 0 if ch.state == "stopped" else 1)
        yield from (messages, acks, unclaimed, state, last)
        backlog = GaugeMetricFamily(
            "hub_translation_backlog", "Archived messages waiting for their translation", labels=["system"]
        )
        for ch in snap.channels:
            if ch.transport == "topic":
                backlog.add_metric([ch.system], ch.counts.pending)
        yield backlog
        dead = GaugeMetricFamily("hub_dead_letters_open", "Open dead letters", labels=["system"])
        for system, n in sorted(snap.dead_letters_open.items()):
            dead.add_metric([system], n)
        yield dead
        lag = GaugeMetricFamily(
            "hub_consumer_lag", "Records on the bus a consumer group has not processed", labels=["group"]
        )
        for group, n in sorted(snap.consumer_lag.items()):
            lag.add_metric([group], n)
        yield lag
        if snap.outbox_backlog is not None:
            yield GaugeMetricFamily(
                "hub_outbox_backlog",
                "Archived messages not yet on their raw topic",
                value=snap.outbox_backlog,
            )
        head = GaugeMetricFamily(
            "hub_ledger_head", "Entries in the audit ledger's hash chain", labels=["topic"]
        )
        for topic, n in sorted(snap.ledger_head.items()):
            head.add_metric([topic], n)
        yield head
        if snap.archive_bytes is not None:
            yield GaugeMetricFamily(
                "hub_archive_size_bytes", "Size of the raw archive on disk", value=snap.archive_bytes
            )
        subs = GaugeMetricFamily("hub_webhook_subscriptions", "Webhook subscriptions", labels=["status"])
        for status, n in sorted(snap.webhooks.items()):
            subs.add_metric([status], n)
        yield subs
        yield GaugeMetricFamily(
            "hub_webhook_consecutive_failures",
            "Consecutive failed deliveries, summed over the subscriptions (0: all delivering)",
            value=snap.webhook_failing,
        )
        # From the delivery log (pruned after HUB_WEBHOOK_LOG_DAYS, shared by every node): a window,
        # so gauges, not counters; rate() needs no process to have counted since it started.
        attempts = GaugeMetricFamily(
            "hub_webhook_delivery_attempts_last_hour",
            "Webhook POST attempts in the last hour, by outcome (delivered, failed)",
            labels=["outcome"],
        )
        latency = GaugeMetricFamily(
            "hub_webhook_delivery_latency_seconds_last_hour",
            "Latency of the last hour's webhook POST attempts (mean, max), by outcome",
            labels=["outcome", "stat"],
        )
        for outcome in ("delivered", "failed"):
            count, mean_ms, max_ms = snap.webhook_recent.get(outcome, (0, 0.0, 0.0))
            attempts.add_metric([outcome], count)
            latency.add_metric([outcome, "mean"], mean_ms / 1000)
            latency.add_metric([outcome, "max"], max_ms / 1000)
        yield attempts
        yield latency


def disk_bytes(*paths: Path) -> int:
    """Bytes of the given files and directory trees (what exists of them)."""
    total = 0
    for root in paths:
        for path in [root] if root.is_file() else root.rglob("*"):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:
                continue  # gone meanwhile
    return total
