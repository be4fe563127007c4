"""Alert rules and their evaluation: raised once, cleared once, hysteresis, hours, published events.

The measures are fakes (plain numbers the test sets); the alert book is real SQLite and the events
go through a real embedded bus, where the suite's wire check validates them against the schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.bus.embedded import EmbeddedBus
from hub.delivery.alerts import AlertBook, AlertService, Probes, load_rules, parse_rules
from hub.delivery.alerts.probes import ack_code
from hub.errors import ConfigError
from projections.runtime.db import make_engine
from schemas.catalogue import parse_event
from tests.unit.schemas.examples import example_dict
from topics.catalogue import CATALOGUE

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOPIC = "derived.ops.v1"


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Measures:
    """What the fake probes answer."""

    last: dict[tuple[str, str | None], datetime] = field(default_factory=dict)
    lag: int = 0
    free_mb: int = 100_000
    dead_letters: int = 0
    answers: tuple[int, int] = (0, 0)

    def probes(self) -> Probes:
        async def last_received(system: str, transport: str | None) -> datetime | None:
            return self.last.get((system, transport))

        async def ack(_system: str, _since: datetime) -> tuple[int, int]:
            return self.answers

        async def dlq() -> int:
            return self.dead_letters

        async def lag() -> int:
            return self.lag

        async def disk() -> int:
            return self.free_mb

        return Probes(last_received, ack, dlq, lag, disk)


@pytest.fixture
async def bus(tmp_path: Path) -> EmbeddedBus:
    bus = EmbeddedBus(tmp_path / "bus")
    await bus.start()
    await bus.ensure_topics(CATALOGUE)
    yield bus
    await bus.close()


def service(
    tmp_path: Path, bus: EmbeddedBus, rules_yaml: str, measures: Measures, clock: Clock
) -> AlertService:
    import yaml

    rules = parse_rules(yaml.safe_load(rules_yaml))
    book = AlertBook(make_engine(f"sqlite:///{tmp_path / 'rm.db'}"))
    return AlertService(rules, measures.probes(), book, bus, clock, zone=SHANGHAI)


async def published(bus: EmbeddedBus) -> list[tuple[str, str]]:
    consumer = await bus.consumer([TOPIC], group=None, from_beginning=True)
    try:
        records = await consumer.poll(max_records=100, timeout_s=0.2)
    finally:
        await consumer.close()
    return [(e.type, e.payload.alert_id) for e in (parse_event(r.value) for r in records)]


class TestRules:
    def test_the_bundled_rules_load(self) -> None:
        """The defaults parse and cover every kind of alert."""
        kinds = {r.kind for r in load_rules(None)}
        assert kinds == {"channel_silent", "dead_letters_growing", "lag", "ack_error_rate", "disk_free"}

    @pytest.mark.parametrize(
        "rule",
        [
            {"id": "x", "kind": "nonsense"},
            {"id": "x", "kind": "channel_silent"},  # no system
            {"id": "x", "kind": "lag", "max": -1},
            {"id": "x", "kind": "channel_silent", "system": "his", "window": {"start": "7h"}},
            {"id": "x", "kind": "disk_free", "severity": "panic"},
        ],
    )
    def test_a_wrong_rule_is_refused_naming_it(self, rule: dict[str, object]) -> None:
        """A rule the evaluator could not judge is a ConfigError at start, naming the rule."""
        with pytest.raises(ConfigError, match="alert rule"):
            parse_rules({"rules": [rule]})

    def test_ack_codes_are_read_from_msa(self) -> None:
        """MSA-1 of an ACK, whatever the separators; something else is not an answer."""
        assert ack_code(b"\x0bMSH|^~\\&|HUB||HIS||20240612||ACK|1|P|2.5\rMSA|AE|MSG1\r\x1c\r") == "AE"
        assert ack_code(b"MSH#^~\\&#HUB\rMSA#AA#1") == "AA"
        assert ack_code(b'{"status": 200}') is None


SILENT = """
rules:
  - {id: his-mllp-silent, kind: channel_silent, title: HIS 接口无消息, system: his, transport: mllp,
     minutes: 15, window: {start: "07:00", end: "22:00"}, severity: critical}
"""


class TestChannelSilent:
    async def test_raised_once_inside_the_hours_and_cleared_once_by_a_message(
        self, tmp_path: Path, bus: EmbeddedBus
    ) -> None:
        """16 silent minutes at 09:00 raise one alert; checking again adds nothing; a message clears it."""
        clock = Clock(datetime(2024, 6, 12, 9, 0, tzinfo=SHANGHAI).astimezone(UTC))
        m = Measures(last={("his", "mllp"): clock.now()})
        alerts = service(tmp_path, bus, SILENT, m, clock)
        assert await alerts.check() == []
        clock.advance(minutes=16)
        raised = await alerts.check()
        assert [(a.alert_id, a.target, a.value) for a in raised] == [("his-mllp-silent", "his/mllp", 16.0)]
        clock.advance(minutes=5)
        assert await alerts.check() == []  # still silent: no second raise
        m.last[("his", "mllp")] = clock.now()
        cleared = await alerts.check()
        assert [(a.alert_id, a.cleared_at) for a in cleared] == [("his-mllp-silent", clock.now())]
        assert await alerts.check() == []
        assert await published(bus) == [
            ("ops.alert_raised", "his-mllp-silent"),
            ("ops.alert_cleared", "his-mllp-silent"),
        ]

    async def test_outside_the_hours_silence_raises_nothing_and_counts_from_the_opening(
        self, tmp_path: Path, bus: EmbeddedBus
    ) -> None:
        """Quiet all night: nothing at 23:00 or 07:10; at 07:15 the 15 minutes since opening raise it."""
        last = datetime(2024, 6, 12, 21, 30, tzinfo=SHANGHAI)
        clock = Clock(datetime(2024, 6, 12, 23, 0, tzinfo=SHANGHAI))
        alerts = service(tmp_path, bus, SILENT, Measures(last={("his", "mllp"): last}), clock)
        assert await alerts.check() == []
        clock.at = datetime(2024, 6, 13, 7, 10, tzinfo=SHANGHAI)
        assert await alerts.check() == []
        clock.at = datetime(2024, 6, 13, 7, 15, tzinfo=SHANGHAI)
        assert [a.value for a in await alerts.check()] == [15.0]

    async def test_a_channel_that_never_received_is_not_judged(
        self, tmp_path: Path, bus: EmbeddedBus
    ) -> None:
        """No message ever: not a feed that stopped, so no alert."""
        clock = Clock(datetime(2024, 6, 12, 12, 0, tzinfo=SHANGHAI))
        alerts = service(tmp_path, bus, SILENT, Measures(), clock)
        clock.advance(hours=3)
        assert await alerts.check() == []


class TestThresholds:
    async def test_lag_hovering_between_the_thresholds_does_not_flap(
        self, tmp_path: Path, bus: EmbeddedBus
    ) -> None:
        """Raised above max, kept while between clear and max, cleared once at or below clear."""
        clock = Clock(datetime(2024, 6, 12, 12, 0, tzinfo=UTC))
        m = Measures()
        rules = "rules: [{id: lag, kind: lag, title: 积压, max: 1000, clear: 500}]"
        alerts = service(tmp_path, bus, rules, m, clock)
        changes = []
        for lag in (900, 1200, 900, 1100, 700, 800, 400, 450, 1001):
            m.lag = lag
            clock.advance(seconds=30)
            changes += [(lag, "open" if a.open else "cleared") for a in await alerts.check()]
        assert changes == [(1200, "open"), (400, "cleared"), (1001, "open")]
        page, total = alerts.book.list(open_only=False)
        assert total == 2
        assert [a.open for a in page] == [True, False]

    async def test_disk_ack_rate_and_dead_letters(self, tmp_path: Path, bus: EmbeddedBus) -> None:
        """Each measure raises past its threshold; too few answers decide nothing."""
        clock = Clock(datetime(2024, 6, 12, 12, 0, tzinfo=UTC))
        m = Measures(free_mb=500, answers=(5, 10), dead_letters=3)
        rules = """
        rules:
          - {id: disk, kind: disk_free, title: 磁盘, min_mb: 1024}
          - {id: ack, kind: ack_error_rate, title: 应答, max_rate: 0.2, min_messages: 20}
          - {id: dlq, kind: dead_letters_growing, title: 死信, increase: 10, minutes: 60}
        """
        alerts = service(tmp_path, bus, rules, m, clock)
        assert [a.alert_id for a in await alerts.check()] == ["disk"]
        m.answers, m.dead_letters = (5, 20), 15
        clock.advance(minutes=10)
        assert sorted(a.alert_id for a in await alerts.check()) == ["ack", "dlq"]
        m.free_mb, m.answers = 2000, (1, 40)
        clock.advance(minutes=61)  # the window moved past the growth: no new dead letters since
        assert sorted(a.alert_id for a in await alerts.check() if not a.open) == ["ack", "disk", "dlq"]


class TestRouting:
    def test_a_notification_rule_routes_a_raised_alert(self, tmp_path: Path) -> None:
        """`on: ops.alert_raised` in the notification rules notifies, with the alert's title and text."""
        from projections.notifications.projection import Notifications
        from projections.notifications.rules import parse_rules as parse_notification_rules
        from projections.runtime.tracking import ensure_tables

        rules = {
            "rules": [
                {
                    "id": "ops-critical",
                    "on": "ops.alert_raised",
                    "when": {"severity": ["critical"]},
                    "to": [{"role": "admin"}],
                    "title": "告警：{title}",
                    "text": "{text}",
                    "urgent": True,
                }
            ]
        }
        projection = Notifications(parse_notification_rules(rules))
        assert "derived.ops.v1" in projection.topics
        engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
        ensure_tables(engine, projection)
        raised = parse_event(example_dict("ops.alert_raised"))
        with engine.begin() as conn:
            (sent,) = projection.apply(conn, [raised])
        assert sent.type == "notification.sent"
        assert sent.payload.title == "告警：HIS MLLP 无消息"  # type: ignore[attr-defined]
        assert sent.payload.text.startswith("his/mllp 已 16 分钟")  # type: ignore[attr-defined]
        engine.dispose()
