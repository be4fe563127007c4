"""Errors of the audit tools (replay.audit.verify*).

AuditError
 ├── CheckpointInvalid   the checkpoint file is malformed, unsigned when a key was given, or its
 │                       signature does not verify: it must not be trusted
 ├── KeyFileError        a signing or public key file cannot be read or is unsafe (readable by others)
 └── LedgerTampered      an export found stored hashes that do not match the bytes: run verify
"""

from __future__ import annotations


class AuditError(Exception):
    """Root of the audit tools' errors."""


class CheckpointInvalid(AuditError):
    """The checkpoint cannot be trusted: malformed, not signed as required, or a bad signature."""


class KeyFileError(AuditError):
    """A key file is missing, unreadable, of the wrong kind, or readable by other users."""


class LedgerTampered(AuditError):
    """The ledger's stored hashes disagree with its bytes; `hub audit verify` says where."""
