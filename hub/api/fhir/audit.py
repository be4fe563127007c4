"""AuditEvent: the audited reads of the audit ledger (`audit.access_recorded`), for auditors.

Who (the API key's id and role, its department scope), what (the action and the resource read:
a raw reference, a code traced), when, from where (the client address), why (X-Hub-Purpose), and
whether it was served or refused. R5 and R4B differ in most of these elements: `r4b` builds the
R4B form from the same event.
"""

from __future__ import annotations

from typing import Any

KEY_SYSTEM = "urn:hospital-hub:id:api-key"
ACTION_SYSTEM = "urn:hospital-hub:audit-action"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_OUTCOME = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
_REST = {"system": _EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
OBSERVER = "hospital integration hub"


def _who(payload: dict[str, Any]) -> dict[str, Any]:
    scope = f", {payload['department']}" if payload.get("department") else ""
    return {
        "identifier": {"system": KEY_SYSTEM, "value": payload["key_id"]},
        "display": f"{payload['role']} key{scope}",
    }


def _entity(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "what": {
            "identifier": {"system": ACTION_SYSTEM, "value": payload["resource"]},
            "display": payload["path"],
        }
    }


def audit_event(event: dict[str, Any]) -> dict[str, Any]:
    """One access event (the ledger's JSON) as an R5 AuditEvent."""
    payload = event["payload"]
    denied = payload["outcome"] == "denied"
    agent: dict[str, Any] = {"who": _who(payload), "requestor": True, "role": [{"text": payload["role"]}]}
    if payload.get("client"):
        agent["networkString"] = payload["client"]
    out: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event["event_id"],
        "category": [{"coding": [_REST]}],
        "code": {"coding": [{"system": ACTION_SYSTEM, "code": payload["action"]}], "text": payload["action"]},
        "action": "R",
        "severity": "warning" if denied else "informational",
        "occurredDateTime": _instant(event["occurred_at"]),
        "recorded": _instant(event["recorded_at"]),
        "outcome": {
            "code": {"system": _OUTCOME, "code": "4" if denied else "0"},
            "detail": [{"text": payload["outcome"]}],
        },
        "agent": [agent],
        "source": {"observer": {"display": OBSERVER}},
        "entity": [_entity(payload)],
    }
    if payload.get("purpose"):
        out["authorization"] = [{"text": payload["purpose"]}]
    return out


def r4b(resource: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The R4B AuditEvent of the same access event."""
    payload = event["payload"]
    agent: dict[str, Any] = {"who": _who(payload), "requestor": True, "role": [{"text": payload["role"]}]}
    if payload.get("client"):
        agent["network"] = {"address": payload["client"], "type": "2"}
    out: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": resource["id"],
        "type": _REST,
        "subtype": [{"system": ACTION_SYSTEM, "code": payload["action"]}],
        "action": "R",
        "period": {"start": resource["occurredDateTime"], "end": resource["occurredDateTime"]},
        "recorded": resource["recorded"],
        "outcome": resource["outcome"]["code"]["code"],
        "outcomeDesc": payload["outcome"],
        "agent": [agent],
        "source": {"observer": {"display": OBSERVER}, "site": event["source"]["site"]},
        "entity": [_entity(payload)],
    }
    if payload.get("purpose"):
        out["purposeOfEvent"] = [{"text": payload["purpose"]}]
    return out


def _instant(text: str) -> str:
    return text.replace("+00:00", "Z")
