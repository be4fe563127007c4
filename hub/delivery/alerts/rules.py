"""Alert rules (YAML): what the hub watches in itself, when it raises an alert and when it clears it.

```yaml
rules:
  - id: his-mllp-silent            # the alert's id (with the channel): raised once, cleared once
    kind: channel_silent           # no message from system/transport for `minutes`
    title: "HIS 接口无消息"
    system: his
    transport: mllp                # optional: any transport of the system
    minutes: 15
    window: {start: "07:00", end: "22:00"}   # site time: judged only inside (silence counted from its start)
    severity: critical             # info | warning | critical
  - {id: dlq, kind: dead_letters_growing, title: "死信增长", increase: 10, minutes: 60}
  - {id: lag, kind: lag, title: "读模型积压", max: 10000, clear: 5000}
  - {id: ack, kind: ack_error_rate, title: "HIS 应答错误率高", system: his, minutes: 15,
     max_rate: 0.2, min_messages: 20}
  - {id: disk, kind: disk_free, title: "磁盘空间不足", min_mb: 1024, clear: 1536}
```

Each numeric rule has a raise threshold and a lower `clear` one (hysteresis: defaults halfway for
lag and the AE/AR rate, +20 % for disk, "no growth" for dead letters), so a measure hovering at
the threshold does not raise and clear on every check. A silent channel clears when a message
arrives; a channel that never received anything is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, get_args

import yaml

from hub.errors import ConfigError
from schemas.ops import AlertKind, AlertSeverity

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
KINDS: tuple[str, ...] = get_args(AlertKind)
SEVERITIES: tuple[str, ...] = get_args(AlertSeverity)


@dataclass(frozen=True, slots=True)
class Window:
    """Hours of the day (site time) a rule is judged in; across midnight when start > end."""

    start: time
    end: time

    def contains(self, at: time) -> bool:
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end

    def opened(self, local_now: datetime) -> datetime:
        """When the window that holds `local_now` opened (local time)."""
        opened = local_now.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        return opened if opened <= local_now else opened - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: str
    kind: str
    title: str
    severity: str = "warning"
    system: str | None = None
    transport: str | None = None
    minutes: float = 15.0
    window: Window | None = None
    threshold: float = 0.0  # minutes silent, records behind, dead-letter increase, AE/AR share, free MB
    clear: float = 0.0  # the measure at which an open alert clears (hysteresis)
    min_messages: int = 20

    @property
    def target(self) -> str | None:
        if self.system is None:
            return None
        return f"{self.system}/{self.transport}" if self.transport else self.system


def _number(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: `{key}` must be a non-negative number, got {value!r}")
    return float(value)


def _window(raw: Any, where: str) -> Window | None:
    if raw is None:
        return None
    try:
        return Window(time.fromisoformat(str(raw["start"])), time.fromisoformat(str(raw["end"])))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f'{where}: window is {{start: "HH:MM", end: "HH:MM"}}, got {raw!r}') from None


def parse_rule(raw: Any) -> AlertRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"alert rule: expected a mapping, got {raw!r}")
    rid = str(raw.get("id") or "")
    where = f"alert rule {rid or '?'}"
    kind = str(raw.get("kind") or "")
    if not rid or len(rid) > 100 or kind not in KINDS:
        raise ConfigError(
            f"{where}: needs an `id` (at most 100 characters) and a `kind` of {', '.join(KINDS)}"
        )
    severity = str(raw.get("severity", "warning"))
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity is one of {', '.join(SEVERITIES)}")
    common: dict[str, Any] = {
        "id": rid,
        "kind": kind,
        "title": str(raw.get("title") or rid),
        "severity": severity,
    }
    minutes = _number(raw, "minutes", 15, where)
    if kind == "channel_silent":
        if not raw.get("system"):
            raise ConfigError(f"{where}: channel_silent needs `system` (and optionally `transport`)")
        return AlertRule(
            **common,
            system=str(raw["system"]),
            transport=str(raw["transport"]) if raw.get("transport") else None,
            minutes=minutes,
            window=_window(raw.get("window"), where),
            threshold=minutes,
        )
    if kind == "dead_letters_growing":
        increase = _number(raw, "increase", 10, where)
        return AlertRule(
            **common,
            minutes=_number(raw, "minutes", 60, where),
            threshold=increase,
            clear=_number(raw, "clear", 0, where),
        )
    if kind == "lag":
        most = _number(raw, "max", 10_000, where)
        return AlertRule(**common, threshold=most, clear=_number(raw, "clear", most / 2, where))
    if kind == "ack_error_rate":
        rate = _number(raw, "max_rate", 0.2, where)
        return AlertRule(
            **common,
            system=str(raw.get("system") or "his"),
            transport="mllp",
            minutes=minutes,
            threshold=rate,
            clear=_number(raw, "clear", rate / 2, where),
            min_messages=int(_number(raw, "min_messages", 20, where)),
        )
    least = _number(raw, "min_mb", 1024, where)  # disk_free
    return AlertRule(**common, threshold=least, clear=_number(raw, "clear", least * 1.2, where))


def parse_rules(data: Any) -> tuple[AlertRule, ...]:
    if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
        raise ConfigError("alert rules: expected a mapping with a `rules` list")
    rules = tuple(parse_rule(r) for r in data.get("rules") or [])
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"alert rules: ids must be unique, got {ids}")
    return rules


def load_rules(path: Path | None) -> tuple[AlertRule, ...]:
    """The rules of `path` (HUB_ALERT_RULES), or the bundled defaults."""
    source = path or DEFAULT_RULES
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"alert rules {source}: {exc}") from exc
    return parse_rules(data)
