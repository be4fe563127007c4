"""Patient pseudonyms: a keyed HMAC of the identifier, so events can be joined per patient
without ever carrying who the patient is.

Only this module and the translator's PID reader touch PID; names, birth dates and the raw
identifiers never leave the adapter. The key is the hub's secret: without it a token cannot be
recomputed from a guessed medical record number, which a plain hash would allow.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "pt_"
MIN_SECRET_BYTES = 16
_TOKEN_HEX = 40  # 160 bits: collisions are out of reach for any hospital's population


def patient_token(secret: bytes, assigning_authority: str, identifier: str) -> str:
    """`pt_` + hex of HMAC-SHA256(secret, authority US identifier), truncated to 160 bits.

    The assigning authority is part of the input because two authorities may issue the same
    number to different people. Surrounding spaces are ignored; case is kept (identifiers are
    case-sensitive in some HIS).
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the patient-token secret must be at least {MIN_SECRET_BYTES} bytes")
    if not identifier.strip():
        raise ValueError("an empty identifier has no patient token")
    message = f"{assigning_authority.strip()}\x1f{identifier.strip()}".encode()
    return PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()[:_TOKEN_HEX]
