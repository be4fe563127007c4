"""Roles, the permissions each grants, and the principal a request runs as.

Five roles, from the three kinds of users the hub serves (DESIGN.md) plus the people in between:

| role       | for                                  | may                                                  |
|------------|--------------------------------------|------------------------------------------------------|
| viewer     | clinical departments, dashboards     | read models (assets, inventory, work orders, KPIs)   |
| app        | downstream applications              | read models, event stream, webhook subscriptions     |
| integrator | hospital IT wiring vendor systems    | read models, ingest, corrections, history, raw HEAD, |
|            |                                      | webhook subscriptions                                |
| auditor    | audit office, insurance, UDI reviews | read models, history, raw messages (decrypted),      |
|            |                                      | the audited reads (FHIR AuditEvent)                  |
| admin      | the hub's operators                  | everything                                           |

Raw payloads can hold patient data, so only auditor and admin read them (GET /raw/{ref});
integrators see what a raw message is (system, message id, sha256, size) but not its bytes.
A key may carry a department: it then sees only objects of that department (code or name),
and anything outside answers 404, never 403, so a key cannot probe what other departments hold;
hospital-wide routes (event stream, webhook subscriptions, ingest) refuse it (hub.api.scope).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    APP = "app"
    INTEGRATOR = "integrator"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"  # read models
    INGEST = "ingest"  # POST /ingest, /fhir and what became of it
    WRITE = "write"  # corrections through the API (POST /assets/{id}/identifiers)
    HISTORY = "history"  # event history with provenance
    RAW_META = "raw_meta"  # what a raw message is, without its bytes
    RAW_PAYLOAD = "raw_payload"  # the raw bytes, decrypted
    DLQ = "dlq"  # dead letters
    SUBSCRIBE = "subscribe"  # webhook subscriptions (/subscriptions)
    STREAM = "stream"  # the event stream (/events/stream), hospital-wide
    AUDIT = "audit"  # the audited reads themselves (GET /fhir/AuditEvent)


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.APP: frozenset({Permission.READ, Permission.SUBSCRIBE, Permission.STREAM}),
    Role.INTEGRATOR: frozenset(
        {
            Permission.READ,
            Permission.INGEST,
            Permission.WRITE,
            Permission.HISTORY,
            Permission.RAW_META,
            Permission.DLQ,
            Permission.SUBSCRIBE,
        }
    ),
    Role.AUDITOR: frozenset(
        {Permission.READ, Permission.HISTORY, Permission.RAW_META, Permission.RAW_PAYLOAD, Permission.AUDIT}
    ),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: an API key's public id, its role and its department scope (None = all)."""

    key_id: str
    role: Role
    department: str | None = None
    label: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def scoped(self) -> bool:
        return self.department is not None

    def sees(self, department_code: str | None, department_name: str | None) -> bool:
        """Whether an object of this department is inside the caller's scope."""
        if self.department is None:
            return True
        return self.department in (department_code, department_name)


ANONYMOUS = Principal(key_id="anonymous", role=Role.ADMIN, label="no authentication (HUB_AUTH=off)")
"""Who a request without a key runs as when authentication is off (demo mode, loopback only)."""
