"""Notification rules (YAML): which events notify whom, with what message, when, and who is next.

```yaml
on_call:                          # named on-call lists: people as their API keys' labels name them
  biomed: [王工, 李工]
channels:                         # where a notification goes besides the console inbox
  biomed-group: {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."}
rules:
  - id: sla-breach
    on: workorder.sla_breached    # an event type (compliance.due, inventory.below_minimum, ...)
    when: {kind: [response]}      # optional: payload field -> allowed values
    to: [{on_call: biomed}, {department: subject}]
    title: "工单超时：{workorder_id}"
    text: "工单 {workorder_id} {kind_zh}超时（第 {escalation_level} 级）"
    channels: [biomed-group]
    quiet_hours: {start: "22:00", end: "07:00"}   # site time; urgent rules ignore it
    dedup: {key: "{workorder_id}", minutes: 60}
    escalate:                     # unread after N minutes (from sending) -> these too
      - {after_minutes: 15, to: [{role: admin}]}
    expire_after_minutes: 1440
    max_age_minutes: 1440         # learned a day after it happened (a history import): not notified
```

Recipients: `{role: R}` (an API role), `{department: D}` (a code or name; `subject`: the
department of the device, work order or stock the event is about, resolved when read),
`{on_call: L}` (every person of list L, expanded when the rule fires), `{person: P}`.
Templates are `str.format` over the event's payload fields plus `subject`, `type`, `occurred_at`
(site time) and a few Chinese labels (`kind_zh`, `status_zh`); a missing field renders as `?`.
Changing rules changes what later events do; `hub replay rebuild notifications` re-judges the log.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

from hub.errors import ConfigError
from schemas.notifications import Recipient

if TYPE_CHECKING:
    from schemas._base import HubModel

CHANNEL_KINDS = ("wecom", "dingtalk", "webhook")
ZH = {
    "response": "响应",
    "resolution": "修复",
    "preventive_maintenance": "预防性维护",
    "calibration": "计量检定",
    "electrical_safety": "电气安全检测",
    "contract": "维保合同",
    "warranty": "保修",
    "certificate": "注册证",
    "in_use": "在用",
    "idle": "闲置",
    "under_repair": "维修中",
    "on_loan": "借出",
    "awaiting_acceptance": "待验收",
    "sealed": "封存",
    "scrapped": "报废",
    "unknown": "未知",
    "base_load_leak": "夜间基础负荷偏高（疑似泄漏）",
    "surge": "用量突增",
    "simultaneous_heating_cooling": "同时供冷供热",
    "stuck_meter": "表计读数停滞",
    "gap": "数据中断",
    "battery": "电池衰减",
    "errors": "故障码反复出现",
    "usage": "预防性维护超期",
    "alarms": "报警频次异常",
}


@dataclass(frozen=True, slots=True)
class Channel:
    """An outbound channel: a WeCom or DingTalk group robot, or a generic signed webhook."""

    name: str
    kind: str
    url: str
    secret: str | None = None  # DingTalk "加签" secret, or the generic webhook's HMAC key


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of an escalation ladder: still unread `after` sending -> tell `to` as well."""

    after: timedelta
    to: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    def contains(self, at: time) -> bool:
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end  # across midnight: 22:00-07:00


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    on: str
    to: tuple[Recipient, ...]
    title: str
    text: str
    when: dict[str, tuple[str, ...]] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    urgent: bool = False
    quiet_hours: QuietHours | None = None
    dedup_key: str = "{subject}"
    dedup_window: timedelta = timedelta(0)
    escalate: tuple[Step, ...] = ()
    expire_after: timedelta | None = None
    max_age: timedelta | None = None  # an event the hub learned this long after it happened: no notification

    def matches(self, event_type: str, fields: dict[str, Any]) -> bool:
        if event_type != self.on:
            return False
        return all(str(fields.get(name)) in allowed for name, allowed in self.when.items())


@dataclass(frozen=True, slots=True)
class NotificationRules:
    rules: tuple[Rule, ...] = ()
    channels: dict[str, Channel] = field(default_factory=dict)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    def for_type(self, event_type: str) -> list[Rule]:
        return [r for r in self.rules if r.on == event_type]

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(r.on for r in self.rules)


class _Lenient(string.Formatter):
    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:  # noqa: ARG002
        value = kwargs.get(key) if isinstance(key, str) else None
        return "?" if value is None else value


def render(template: str, fields: dict[str, Any]) -> str:
    """`template` over `fields`; an unknown or empty field renders as `?`, never an error."""
    try:
        return _Lenient().vformat(template, (), fields)
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def template_fields(payload: HubModel, *, subject: str, event_type: str, occurred: str) -> dict[str, Any]:
    data = payload.model_dump(mode="json")
    fields: dict[str, Any] = {
        k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None
    }
    for key, value in data.items():  # one level of nesting: {location.department.name} is not str.format
        if isinstance(value, dict):
            for k2, v2 in value.items():
                if isinstance(v2, dict):
                    for k3, v3 in v2.items():
                        fields[f"{key}_{k2}_{k3}"] = v3
                else:
                    fields[f"{key}_{k2}"] = v2
    fields.update(subject=subject, type=event_type, occurred_at=occurred)
    fields["kind_zh"] = ZH.get(str(data.get("kind")), data.get("kind"))
    fields["status_zh"] = ZH.get(str(data.get("status")), data.get("status"))
    fields["category_zh"] = ZH.get(str(data.get("category")), data.get("category"))
    return fields


def _recipients(items: Any, on_call: dict[str, tuple[str, ...]], where: str) -> tuple[Recipient, ...]:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: `to` must be a non-empty list of recipients")
    out: list[Recipient] = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{where}: a recipient is one of role/department/on_call/person, got {item!r}")
        ((kind, value),) = item.items()
        value = str(value)
        if kind == "on_call":
            if value not in on_call:
                raise ConfigError(f"{where}: unknown on-call list {value!r}")
            out += [Recipient(kind="person", value=p) for p in on_call[value]]
        elif kind == "department" and value == "subject":
            out.append(Recipient(kind="subject_department"))
        elif kind in ("role", "department", "person"):
            out.append(Recipient(kind=kind, value=value))
        else:
            raise ConfigError(f"{where}: unknown recipient kind {kind!r}")
    return tuple(dict.fromkeys(out))


def _minutes(value: Any, where: str) -> timedelta:
    if not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: minutes must be a non-negative number, got {value!r}")
    return timedelta(minutes=value)


def parse_rules(data: Any, *, zone: ZoneInfo | None = None) -> NotificationRules:
    """Rules from the parsed YAML document (see the module docstring); ConfigError names the rule."""
    if not isinstance(data, dict):
        raise ConfigError("notification rules: expected a mapping with `rules`")
    on_call = {str(k): tuple(str(p) for p in v) for k, v in (data.get("on_call") or {}).items()}
    channels: dict[str, Channel] = {}
    for name, spec in (data.get("channels") or {}).items():
        if not isinstance(spec, dict) or spec.get("kind") not in CHANNEL_KINDS or not spec.get("url"):
            raise ConfigError(f"channel {name}: needs kind ({', '.join(CHANNEL_KINDS)}) and url")
        channels[str(name)] = Channel(str(name), spec["kind"], str(spec["url"]), spec.get("secret"))
    rules: list[Rule] = []
    for raw in data.get("rules") or []:
        rid = str(raw.get("id") or "")
        where = f"rule {rid or '?'}"
        # YAML 1.1 (PyYAML) reads a bare `on:` key as the boolean True: accept it as written.
        on = raw.get("on", raw.get(True))
        if len(rid) > 100:  # the read model column width
            raise ConfigError(f"{where}: an id of at most 100 characters")
        if not rid or not on:
            raise ConfigError(f"{where}: needs `id` and `on`")
        unknown = [c for c in raw.get("channels") or [] if c not in channels and c != "inbox"]
        if unknown:
            raise ConfigError(f"{where}: unknown channels {unknown}")
        quiet = raw.get("quiet_hours")
        dedup = raw.get("dedup") or {}
        steps = tuple(
            Step(_minutes(s.get("after_minutes"), where), _recipients(s.get("to"), on_call, where))
            for s in raw.get("escalate") or []
        )
        if any(b.after <= a.after for a, b in pairwise(steps)):
            raise ConfigError(f"{where}: escalation steps must come strictly later one after another")
        expire = raw.get("expire_after_minutes")
        rules.append(
            Rule(
                id=rid,
                on=str(on),
                to=_recipients(raw.get("to"), on_call, where),
                title=str(raw.get("title") or rid),
                text=str(raw.get("text") or raw.get("title") or rid),
                when={
                    str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
                    for k, v in (raw.get("when") or {}).items()
                },
                channels=tuple(c for c in raw.get("channels") or [] if c != "inbox"),
                urgent=bool(raw.get("urgent", False)),
                quiet_hours=None
                if not quiet
                else QuietHours(time.fromisoformat(quiet["start"]), time.fromisoformat(quiet["end"])),
                dedup_key=str(dedup.get("key", "{subject}")),
                dedup_window=_minutes(dedup.get("minutes", 0), where),
                escalate=steps,
                expire_after=None if expire is None else _minutes(expire, where),
                max_age=None
                if raw.get("max_age_minutes") is None
                else _minutes(raw["max_age_minutes"], where),
            )
        )
    if len({r.id for r in rules}) != len(rules):
        raise ConfigError("notification rules: rule ids must be unique")
    return NotificationRules(tuple(rules), channels, zone or ZoneInfo("Asia/Shanghai"))


def load_rules(path: Path | None = None, *, zone: ZoneInfo | None = None) -> NotificationRules:
    """Rules from a YAML file; without one, the bundled defaults (default_rules.yaml)."""
    source = path or Path(__file__).with_name("default_rules.yaml")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"notification rules {source}: {exc}") from exc
    return parse_rules(data, zone=zone)
