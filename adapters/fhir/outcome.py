"""FHIR OperationOutcome JSON for a list of issues: what the HTTP edge answers when it refuses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adapters.fhir.issues import Issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome with one `issue` per Issue: severity, code, diagnostics, expression.

    `expression` holds the element path (FHIRPath) when the issue names one. An empty list still
    gives a valid OperationOutcome (FHIR requires one issue): an informational "all OK".
    """
    entries = [_issue(issue) for issue in issues]
    if not entries:
        entries = [{"severity": "information", "code": "informational", "diagnostics": "no issues"}]
    return {"resourceType": "OperationOutcome", "issue": entries}


def _issue(issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.reason}
    if issue.path:
        out["expression"] = [issue.path]
    return out
