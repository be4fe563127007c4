"""`GET /audit/ledger`: is the audit ledger intact, and what is its last checkpoint.

What `hub audit verify` (without --log) checks, for the console's Audit page: every chain of
the tamper-evident ledger is walked and compared with its signed heads and kept checkpoints;
`findings` lists what would show tampering (none: intact). `last_checkpoint` is the newest
checkpoint the ledger keeps (a chain's head every N entries, or taken on demand). The walk reads
the whole ledger: a page opened now and then, not a probe.

Needs the history permission (integrator, auditor, admin) and a hospital-wide key: the ledger
is one for the whole hospital.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import ServicesDep  # noqa: TC001
from hub.api.scope import whole_hospital

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[whole_hospital("the audit ledger")])
MAX_FINDINGS = 50


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CheckpointOut(_Out):
    topic: str
    partition: int
    count: int = Field(description="Entries of the chain the checkpoint covers")
    head_hash: str
    created_at: datetime


class FindingOut(_Out):
    kind: str
    where: str
    detail: str


class LedgerStatusOut(_Out):
    intact: bool
    chains: int
    entries: int
    seals_checked: int = Field(description="Signed heads and checkpoints checked")
    findings: list[FindingOut] = Field(description=f"Evidence of tampering (the first {MAX_FINDINGS})")
    findings_total: int
    verified_at: datetime
    elapsed_ms: float
    checkpoints: int = Field(description="Checkpoints the ledger keeps")
    last_checkpoint: CheckpointOut | None


@router.get(
    "/ledger", response_model=LedgerStatusOut, summary="Audit ledger: verification and last checkpoint"
)
async def ledger_status(services: ServicesDep) -> LedgerStatusOut:
    status = await asyncio.to_thread(services.ledger_status)
    return LedgerStatusOut.model_validate(
        {
            **status,
            "findings": status["findings"][:MAX_FINDINGS],
            "findings_total": len(status["findings"]),
            "verified_at": services.clock.now(),
        }
    )
