"""What the HTTP edge answers for a FHIR request, built from the Translation.

- `bundle_kind(payload)`: batch, transaction, or None (not a Bundle it can read).
- `entry_outcomes(translation)`: per entry, `201 Created` (it gave canonical events), `200 OK`
  (accepted and archived, nothing canonical: a SupplyRequest, a draft) or `400 Bad Request`
  (with an OperationOutcome naming the elements), plus whether it was rolled back.
- `response_bundle(kind, outcomes)`: the batch-response / transaction-response Bundle.
- `transaction_outcome(outcomes)`: a failed transaction is answered with one OperationOutcome
  (FHIR: all or nothing), each issue's expression rooted at its entry.
- `resource_outcome(translation)`: the OperationOutcome for a single resource.

Entry statuses are FHIR's (they are part of the Bundle), which is why the adapter names them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import defusedxml.ElementTree
from defusedxml.common import DefusedXmlException

from adapters.fhir.issues import Issue
from adapters.fhir.outcome import operation_outcome
from adapters.fhir.xml import split_tag

if TYPE_CHECKING:
    from adapters.base import Failure, Translation
    from adapters.fhir.parse import BundleKind

Status = Literal["201 Created", "200 OK", "400 Bad Request"]
CREATED: Final = "201 Created"
OK: Final = "200 OK"
BAD_REQUEST: Final = "400 Bad Request"
_ENTRY = re.compile(r"^entry:(\d+)(?::\s*(.*))?$", re.DOTALL)
_ROLLED_BACK = "rolled back:"


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """One Bundle entry's answer: status line, event count, OperationOutcome (None when created)."""

    index: int
    status: Status
    events: int = 0
    outcome: dict[str, Any] | None = None
    rolled_back: bool = False

    @property
    def failed(self) -> bool:
        return self.status == BAD_REQUEST and not self.rolled_back


def bundle_kind(payload: bytes, content_type: str | None = None) -> BundleKind | None:
    """`batch` or `transaction` when the body is such a Bundle; None otherwise (or unreadable)."""
    is_xml = (content_type and "xml" in content_type.lower()) or payload.lstrip(b"\xef\xbb\xbf \t\r\n")[
        :1
    ] == b"<"
    kind: Any = _xml_kind(payload) if is_xml else _json_kind(payload)
    return kind if kind in {"batch", "transaction"} else None


def entry_outcomes(translation: Translation, entry_count: int | None = None) -> list[EntryOutcome]:
    """Per entry of a Bundle translation, in entry order (`entry_count` defaults to its units)."""
    count = translation.units if entry_count is None else entry_count
    events = [0] * count
    for emitted in translation.events:
        index = _index(emitted.position)
        if index is not None and index < count:
            events[index] += 1
    failures = {i: f for f in translation.failures if (i := _index(f.position)) is not None}
    notes: dict[int, list[str]] = {}
    for text in translation.skipped:
        match = _ENTRY.match(text)
        if match:
            notes.setdefault(int(match[1]), []).append(match[2] or "")
    out: list[EntryOutcome] = []
    for i in range(count):
        if i in failures:
            out.append(EntryOutcome(i, BAD_REQUEST, outcome=operation_outcome(failure_issues(failures[i]))))
            continue
        said = notes.get(i, [])
        if any(n.startswith(_ROLLED_BACK) for n in said):
            info = [Issue("processing", None, n, severity="information") for n in said]
            out.append(EntryOutcome(i, BAD_REQUEST, outcome=operation_outcome(info), rolled_back=True))
        elif events[i]:
            out.append(EntryOutcome(i, CREATED, events=events[i], outcome=_notes(said)))
        else:
            out.append(
                EntryOutcome(i, OK, outcome=_notes(said or ["accepted and archived; no canonical event"]))
            )
    return out


def response_bundle(kind: BundleKind, outcomes: list[EntryOutcome]) -> dict[str, Any]:
    """The `batch-response` or `transaction-response` Bundle for the entries' outcomes."""
    if kind == "transaction" and any(o.failed or o.rolled_back for o in outcomes):
        raise ValueError("a failed transaction is answered with transaction_outcome(), not a Bundle")
    entries = []
    for outcome in outcomes:
        response: dict[str, Any] = {"status": outcome.status}
        if outcome.outcome is not None:
            response["outcome"] = outcome.outcome
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": entries}


def transaction_outcome(outcomes: list[EntryOutcome]) -> dict[str, Any]:
    """The OperationOutcome for a failed transaction: every failed entry's issues, rooted at the entry."""
    issues: list[dict[str, Any]] = []
    for outcome in outcomes:
        if not outcome.failed or outcome.outcome is None:
            continue
        for issue in outcome.outcome["issue"]:
            rooted = dict(issue)
            rooted["expression"] = [_rooted(outcome.index, e) for e in issue.get("expression", [])] or [
                f"Bundle.entry[{outcome.index}]"
            ]
            issues.append(rooted)
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "no entry failed"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def resource_outcome(translation: Translation) -> dict[str, Any]:
    """The OperationOutcome for a single resource: its errors, else what became of it."""
    if translation.failures:
        return operation_outcome([i for f in translation.failures for i in failure_issues(f)])
    notes = [s.split(": ", 1)[-1] for s in translation.skipped]
    if translation.events:
        notes.insert(0, f"{len(translation.events)} canonical event(s)")
    return operation_outcome([Issue("informational", None, n, severity="information") for n in notes])


def failure_issues(failure: Failure) -> list[Issue]:
    """A Failure of this adapter as OperationOutcome issues, one per element it names.

    The translator writes a failure's reason as `<path>: <reason>` parts joined by `; ` and its
    `location.field` as the comma-separated paths; this reads them back.
    """
    code: Any = failure.code
    paths = [p.strip() for p in (failure.location.field or "").split(",") if p.strip()]
    parts = failure.reason.split("; ")
    issues: list[Issue] = []
    for path in paths:
        said = [p[len(path) + 2 :] for p in parts if p.startswith(f"{path}: ")]
        issues.append(Issue(code, path, "; ".join(said) or failure.reason))
    prefixes = tuple(f"{path}: " for path in paths)
    issues += [
        Issue("informational", None, p, severity="information")
        for p in parts
        if paths and not p.startswith(prefixes)
    ]
    return issues or [Issue(code, None, failure.reason)]


def _notes(notes: list[str]) -> dict[str, Any] | None:
    if not notes:
        return None
    return operation_outcome([Issue("informational", None, n, severity="information") for n in notes])


def _rooted(index: int, path: str) -> str:
    if path.startswith("Bundle."):
        return path
    kind, _, rest = path.partition(".")
    base = f"Bundle.entry[{index}].resource.ofType({kind})"
    return f"{base}.{rest}" if rest else base


def _index(position: str) -> int | None:
    match = _ENTRY.match(position)
    return int(match[1]) if match else None


def _json_kind(payload: bytes) -> Any:
    try:
        value = json.loads(payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        return value.get("type")
    return None


def _xml_kind(payload: bytes) -> Any:
    try:
        root = defusedxml.ElementTree.fromstring(payload, forbid_dtd=True)
    except (DefusedXmlException, defusedxml.ElementTree.ParseError, ValueError, LookupError):
        return None  # expat refuses multi-byte declared encodings with a bare ValueError
    if split_tag(root.tag)[1] != "Bundle":
        return None
    kind = next((c for c in root if split_tag(c.tag)[1] == "type"), None)
    return kind.get("value") if kind is not None else None
