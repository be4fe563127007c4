"""Notifications: rules fire once per event, quiet hours hold, duplicates fold, unread escalates on the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import uuid4

import pytest

from hub.errors import ConfigError
from hub.translation.corrections import correction
from hub.translation.snapshots import content_hash
from projections.notifications.projection import Notifications, notification_id_for
from projections.notifications.queries import Reader, get_notification, list_notifications
from projections.notifications.rules import load_rules, parse_rules
from projections.runtime.db import make_engine
from projections.runtime.tracking import ensure_tables
from projections.work_orders.sla import Breach, breach_event
from schemas._base import DeptRef, Identifier, SourceSystem
from schemas.envelope import Source
from schemas.notifications import (
    NotificationEscalated,
    NotificationExpired,
    NotificationRead,
    NotificationSent,
)
from schemas.work_orders import WorkOrderRequested

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy import Engine

    from schemas.envelope import EventBase

T0 = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: outside quiet hours
M = timedelta(minutes=1)
ICU = DeptRef(code="0101", name="重症医学科")

RULES: dict[str, Any] = {
    "on_call": {"biomed": ["王工", "李工"], "lead": ["张主任"]},
    "channels": {"biomed-group": {"kind": "wecom", "url": "http://127.0.0.1:9/robot"}},
    "rules": [
        {
            "id": "sla",
            "on": "workorder.sla_breached",
            "when": {"kind": ["response"]},
            "to": [{"on_call": "biomed"}, {"department": "subject"}],
            "title": "工单超时：{workorder_id}",
            "text": "工单 {workorder_id} {kind_zh}超时（第 {escalation_level} 级）",
            "channels": ["inbox", "biomed-group"],
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "dedup": {"key": "{workorder_id}:{kind}", "minutes": 60},
            "escalate": [
                {"after_minutes": 10, "to": [{"on_call": "lead"}]},
                {"after_minutes": 20, "to": [{"role": "admin"}]},
                {"after_minutes": 30, "to": [{"role": "auditor"}]},
            ],
            "expire_after_minutes": 600,
        },
        {
            "id": "sla-urgent",
            "on": "workorder.sla_breached",
            "when": {"kind": ["resolution"]},
            "urgent": True,
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "to": [{"role": "integrator"}],
            "title": "修复超时",
        },
    ],
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A fresh read-model database (SQLite, then PostgreSQL) with the notification tables."""
    eng = make_engine(db_url)
    ensure_tables(eng, Notifications(parse_rules(RULES)))
    yield eng
    eng.dispose()


def requested(workorder_id: str, at: datetime = T0) -> WorkOrderRequested:
    return WorkOrderRequested.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": at,
            "recorded_at": at,
            "source": Source(
                system=SourceSystem.OA, site="h01", message_id=workorder_id, adapter_version="t"
            ),
            "subject": workorder_id,
            "payload": {
                "asset": Identifier(scheme="hrp.card", value="ZC-1"),
                "reporting_department": ICU,
                "symptom": "报警",
            },
        }
    )


def breach(
    workorder_id: str, at: datetime = T0, kind: Literal["response", "resolution"] = "response", level: int = 1
) -> EventBase:
    return breach_event(
        workorder_id,
        Breach(kind, level, at),
        site="h01",
        causation_id=None,
        recorded_at=at,
    )


def read(notification_id: str, at: datetime, reader: str = "张主任") -> NotificationRead:
    return NotificationRead.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": at,
            "recorded_at": at,
            "source": Source(system=SourceSystem.HUB, site="h01", message_id="ack", adapter_version="t"),
            "subject": notification_id,
            "payload": {
                "notification_id": notification_id,
                "key_id": "k1",
                "reader": reader,
                "role": "viewer",
            },
        }
    )


class Hub:
    """The projection over one engine, applying and ticking each in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.p = Notifications(parse_rules(RULES))

    def apply(self, *events: EventBase) -> Sequence[EventBase]:
        with self.engine.begin() as conn:
            return list(self.p.apply(conn, list(events)))  # type: ignore[arg-type]

    def tick(self, now: datetime) -> list[EventBase]:
        with self.engine.begin() as conn:
            return self.p.tick(conn, now)


def test_sla_breach_escalates_twice_on_the_clock_and_stops_when_read(engine: Engine) -> None:
    hub = Hub(engine)
    hub.apply(requested("WO-1"))
    b = breach("WO-1")
    (sent,) = hub.apply(b)
    assert isinstance(sent, NotificationSent)
    nid = sent.payload.notification_id
    assert nid == notification_id_for("sla", str(b.event_id))
    assert sent.payload.title == "工单超时：WO-1"
    assert sent.payload.text == "工单 WO-1 响应超时（第 1 级）"
    assert {(r.kind, r.value) for r in sent.payload.recipients} == {
        ("person", "王工"),
        ("person", "李工"),
        ("subject_department", ""),
    }
    assert sent.payload.channels == ["biomed-group"]
    assert hub.tick(T0 + 9 * M) == []
    (first,) = hub.tick(T0 + 10 * M)
    assert isinstance(first, NotificationEscalated)
    assert (first.payload.level, [r.value for r in first.payload.recipients]) == (1, ["张主任"])
    assert hub.tick(T0 + 10 * M) == []  # ticking again concludes nothing new
    (second,) = hub.tick(T0 + 25 * M)
    assert (second.payload.level, second.occurred_at) == (2, T0 + 20 * M)  # type: ignore[attr-defined]
    hub.apply(read(nid, T0 + 26 * M))
    assert hub.tick(T0 + 31 * M) == []  # level 3 would be due: read, so nobody else is told
    assert hub.tick(T0 + 601 * M) == []  # nor is a read notification expired
    with engine.connect() as conn:
        row = get_notification(conn, nid)
    assert row is not None
    assert (row["state"], row["level"], [r["reader"] for r in row["receipts"]]) == ("read", 2, ["张主任"])
    assert (row["department_code"], row["department_name"]) == ("0101", "重症医学科")


def test_a_corrected_request_gives_the_notification_its_department(engine: Engine) -> None:
    """A work order requested with its department unknown (by name), then corrected by a retry
    (`workorder.request_corrected`): its notifications read the corrected department."""
    hub = Hub(engine)
    wrong = requested("WO-2")
    wrong = wrong.model_copy(
        update={
            "payload": wrong.payload.model_copy(update={"reporting_department": DeptRef(name="重症二区")})
        }
    )
    right = wrong.model_copy(
        update={"payload": wrong.payload.model_copy(update={"reporting_department": ICU})}
    )
    previous = wrong.model_dump(mode="json")["payload"]
    fix = correction(right, previous, content_hash(right.model_dump(mode="json")["payload"]))
    hub.apply(wrong)
    (sent,) = hub.apply(breach("WO-2"))

    def department() -> tuple[str | None, str | None]:
        with engine.connect() as conn:
            row = get_notification(conn, sent.payload.notification_id)  # type: ignore[attr-defined]
        assert row is not None
        return row["department_code"], row["department_name"]

    assert department() == (None, "重症二区")
    hub.apply(fix)
    assert department() == ("0101", "重症医学科")
    hub.apply(wrong)  # the original again (a redelivery): the correction stands
    assert department() == ("0101", "重症医学科")


def test_a_replayed_or_redelivered_event_never_notifies_twice(engine: Engine) -> None:
    hub = Hub(engine)
    b = breach("WO-2")
    assert len(hub.apply(b)) == 1
    assert hub.apply(b) == []
    assert hub.apply(requested("WO-2"), b) == []
    with engine.connect() as conn:
        _, total = list_notifications(conn, Reader("admin"), scope_department=None, inbox=False)
    assert total == 1


def test_same_key_within_the_window_is_folded_and_outside_it_is_not(engine: Engine) -> None:
    hub = Hub(engine)
    assert len(hub.apply(breach("WO-3"))) == 1
    assert hub.apply(breach("WO-3", T0 + 59 * M, level=2)) == []  # same order and kind, 59 min later
    assert len(hub.apply(breach("WO-3", T0 + 61 * M, level=3))) == 1
    assert len(hub.apply(breach("WO-4", T0 + 1 * M))) == 1  # another work order: its own key


def test_quiet_hours_hold_until_they_end_in_site_time_unless_urgent(engine: Engine) -> None:
    hub = Hub(engine)
    night = datetime(2024, 6, 3, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert hub.apply(breach("WO-5", night)) == []
    (urgent,) = hub.apply(breach("WO-6", night, kind="resolution"))  # the urgent rule ignores quiet hours
    assert urgent.payload.rule == "sla-urgent"  # type: ignore[attr-defined]
    morning = datetime(2024, 6, 3, 23, 0, tzinfo=UTC)  # 07:00 the next day in Shanghai
    assert [e.type for e in hub.tick(morning - M)] == []
    (sent,) = [e for e in hub.tick(morning) if isinstance(e, NotificationSent)]
    assert sent.occurred_at == morning
    assert hub.tick(morning + 9 * M) == []  # escalation counts from sending, not from the event
    assert [e.type for e in hub.tick(morning + 10 * M)] == ["notification.escalated"]


def test_unread_past_expiry_expires_instead_of_escalating(engine: Engine) -> None:
    hub = Hub(engine)
    (sent,) = hub.apply(breach("WO-7"))
    (expired,) = hub.tick(T0 + 600 * M)
    assert isinstance(expired, NotificationExpired)
    assert hub.tick(T0 + 700 * M) == []
    with engine.connect() as conn:
        row = get_notification(conn, sent.payload.notification_id)  # type: ignore[attr-defined]
    assert row is not None
    assert row["state"] == "expired"


def test_the_inbox_is_the_readers_by_person_department_and_role(engine: Engine) -> None:
    hub = Hub(engine)
    hub.apply(requested("WO-8"), breach("WO-8"))
    hub.tick(T0 + 20 * M)  # levels 1 (张主任) and 2 (admin)
    with engine.connect() as conn:

        def box(reader: Reader, scope: str | None = None) -> int:
            return list_notifications(conn, reader, scope_department=scope)[1]

        assert box(Reader("viewer", person="王工")) == 1  # on the on-call list
        assert box(Reader("viewer", person="张主任")) == 1  # escalated to
        assert box(Reader("viewer", person="赵工")) == 0
        assert (
            box(Reader("viewer", department="重症医学科"), "重症医学科") == 1
        )  # the work order's department
        assert box(Reader("viewer", department="急诊科"), "急诊科") == 0
        assert box(Reader("admin")) == 1  # level 2
        assert box(Reader("auditor")) == 0  # level 3 not reached
        assert box(Reader("admin", department="急诊科"), "急诊科") == 0  # department scope applies
        items, _ = list_notifications(conn, Reader("admin"), scope_department=None, states=["escalated"])
        assert [i["level"] for i in items] == [2]


def test_rules_name_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="unknown on-call list 'nobody'"):
        parse_rules({"rules": [{"id": "r", "on": "compliance.due", "to": [{"on_call": "nobody"}]}]})
    with pytest.raises(ConfigError, match="unknown channels"):
        parse_rules(
            {"rules": [{"id": "r", "on": "compliance.due", "to": [{"role": "admin"}], "channels": ["x"]}]}
        )
    steps = [{"after_minutes": 10, "to": [{"role": "admin"}]}] * 2
    with pytest.raises(ConfigError, match="strictly later"):
        parse_rules(
            {"rules": [{"id": "r", "on": "compliance.due", "to": [{"role": "a"}], "escalate": steps}]}
        )


def test_the_bundled_rules_load_with_on_as_yaml_reads_it() -> None:
    """PyYAML reads a bare `on:` as True; the bundled file (written that way) still loads every rule."""
    rules = load_rules()
    assert {r.on for r in rules.rules} >= {
        "workorder.sla_breached",
        "compliance.overdue",
        "inventory.below_minimum",
    }


def test_old_news_past_max_age_notifies_nobody(engine: Engine) -> None:
    """An event the hub learned a day after it happened (a history import) is not notified."""
    rules = parse_rules({**RULES, "rules": [{**RULES["rules"][0], "max_age_minutes": 1440}]})
    p = Notifications(rules)
    late = breach_event(
        "WO-9", Breach("response", 1, T0), site="h01", causation_id=None, recorded_at=T0 + 1440 * M
    )
    fresh = breach_event(
        "WO-10", Breach("response", 1, T0), site="h01", causation_id=None, recorded_at=T0 + 1439 * M
    )
    with engine.begin() as conn:
        assert [e.subject for e in p.apply(conn, [late, fresh])] == [
            notification_id_for("sla", str(fresh.event_id))
        ]
