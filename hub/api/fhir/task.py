"""Task from the work-order read model: status, owner, focus = the Device, the request and its times.

The hub's lifecycle state is `businessStatus`; `status` is its FHIR code (approved and assigned
are `accepted`; completed and closed `completed`). The same resource is valid R5 and R4B.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from hub.api.fhir.device import instant, system_of
from hub.api.fhir.places import department_id

if TYPE_CHECKING:
    from collections.abc import Mapping

STATUS = {
    "requested": "requested",
    "approved": "accepted",
    "assigned": "accepted",
    "started": "in-progress",
    "on_hold": "on-hold",
    "completed": "completed",
    "closed": "completed",
    "cancelled": "cancelled",
    "rejected": "rejected",
}
HUB_STATES: dict[str, tuple[str, ...]] = {}
for _hub, _fhir in STATUS.items():
    HUB_STATES[_fhir] = (*HUB_STATES.get(_fhir, ()), _hub)
PRIORITY = {"urgent": "stat", "high": "urgent", "normal": "routine", "low": "routine"}
BUSINESS_STATUS = "urn:hospital-hub:workorder-status"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def task_id(workorder_id: str) -> str:
    """The work-order id when it is a valid FHIR id, else `wo-<digest>` (Task read accepts both)."""
    if _FHIR_ID.match(workorder_id):
        return workorder_id
    return f"wo-{hashlib.sha256(workorder_id.encode()).hexdigest()[:24]}"


def task(row: Mapping[str, Any]) -> dict[str, Any]:
    """One work order (get_work_order / list_work_orders row) as a Task."""
    status = str(row["status"])
    out: dict[str, Any] = {
        "resourceType": "Task",
        "id": task_id(row["workorder_id"]),
        "identifier": [{"system": system_of("workorder"), "value": row["workorder_id"]}],
        "status": STATUS.get(status, "requested"),
        "businessStatus": {"coding": [{"system": BUSINESS_STATUS, "code": status}], "text": status},
        "intent": "order",
        "code": {"text": "repair"},
        "lastModified": instant(row["status_at"]),
    }
    if row.get("priority") in PRIORITY:
        out["priority"] = PRIORITY[row["priority"]]
    if row.get("symptom"):
        out["description"] = row["symptom"]
    if row.get("asset_id"):
        out["focus"] = {"reference": f"Device/{row['asset_id']}"}
        if row.get("asset_name"):
            out["focus"]["display"] = row["asset_name"]
    elif row.get("asset_value"):
        out["focus"] = {
            "identifier": {
                "system": system_of(row.get("asset_scheme") or "asset"),
                "value": row["asset_value"],
            }
        }
    out.update(_people_and_times(row))
    return out


def _people_and_times(row: Mapping[str, Any]) -> dict[str, Any]:
    """Owner (the engineer or team), requester, department, request and execution times, resolution."""
    out: dict[str, Any] = {}
    owner = row.get("engineer") or row.get("team")
    if owner:
        out["owner"] = {"display": owner}
    if row.get("requested_by"):
        out["requester"] = {"display": row["requested_by"]}
    if row.get("requested_at") is not None:
        out["authoredOn"] = instant(row["requested_at"])
    if row.get("department_code"):
        out["location"] = {
            "reference": f"Location/{department_id(row['department_code'])}",
            "display": row.get("department_name") or row["department_code"],
        }
    period = {k: instant(row[c]) for k, c in (("start", "started_at"), ("end", "completed_at")) if row.get(c)}
    if period:
        out["executionPeriod"] = period
    if row.get("resolution"):
        out["note"] = [{"text": row["resolution"]}]
    return out
