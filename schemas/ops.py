"""Operational alerts: the hub watching itself (hub.delivery.alerts concludes them).

`ops.alert_raised` when a rule's condition starts to hold (a channel silent in its hours, dead
letters growing, projection lag, the HL7 AE/AR rate, free disk), `ops.alert_cleared` when it
stops: each alert is raised once and cleared once, its `alert_id` (the rule, and the channel it
watches) is the subject, and the cleared event names the raise it ends. They travel on
`derived.ops.v1` like any derived event: SSE, webhooks and notification rules can take them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime

from schemas._base import HubModel, NonEmptyStr
from schemas.envelope import EventBase

AlertKind = Literal["channel_silent", "dead_letters_growing", "lag", "ack_error_rate", "disk_free"]
AlertSeverity = Literal["info", "warning", "critical"]


class AlertRaisedPayload(HubModel):
    alert_id: NonEmptyStr  # the rule id, and the channel it watches when it watches one
    rule: NonEmptyStr
    kind: AlertKind
    severity: AlertSeverity
    title: NonEmptyStr  # Chinese first, as the rule's `title` says it
    text: NonEmptyStr  # what was measured against what, in words
    target: str | None = None  # e.g. "his/mllp": the channel, or none for hub-wide rules
    value: float | None = None  # the measure when raised (minutes silent, records behind, ...)
    threshold: float | None = None
    raised_at: AwareDatetime


class AlertClearedPayload(HubModel):
    alert_id: NonEmptyStr
    rule: NonEmptyStr
    kind: AlertKind
    severity: AlertSeverity
    title: NonEmptyStr
    text: NonEmptyStr  # why it cleared
    target: str | None = None
    value: float | None = None  # the measure when cleared
    raised_at: AwareDatetime
    cleared_at: AwareDatetime


class OpsAlertRaised(EventBase):
    type: Literal["ops.alert_raised"] = "ops.alert_raised"
    schema_version: Literal[1] = 1
    payload: AlertRaisedPayload


class OpsAlertCleared(EventBase):
    type: Literal["ops.alert_cleared"] = "ops.alert_cleared"
    schema_version: Literal[1] = 1
    payload: AlertClearedPayload


OPS_EVENTS = (OpsAlertRaised, OpsAlertCleared)
