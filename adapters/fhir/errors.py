"""The FHIR adapter's one error: a body the hub refuses, with issues ready for an OperationOutcome.

    AdapterError
    └── MalformedMessage
        └── FhirRejected   kind: too_large | unsupported_format | unsupported_type | invalid

`kind` says why in words the HTTP edge maps to a status (413, 415, 400/404, 400); the adapter
itself never names a status code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adapters.fhir.issues import Issue

RejectKind = Literal["too_large", "unsupported_format", "unsupported_type", "invalid"]


class FhirRejected(MalformedMessage):
    """The body cannot be read as an acceptable FHIR resource or Bundle; `issues` say why."""

    def __init__(self, kind: RejectKind, issues: Sequence[Issue]) -> None:
        self.kind: RejectKind = kind
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__("; ".join(issue.text() for issue in self.issues) or kind)
