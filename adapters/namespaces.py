"""Schemes shared by every adapter that reads identifiers carrying their namespace (HL7 EI, FHIR
Identifier.system): the IEEE EUI-64 device identifier, and the qualified form an identifier takes
when the site's `namespaces:` table does not know its namespace.
"""

from __future__ import annotations

import hashlib
import re

from schemas._base import Identifier

MAX_VALUE = 255  # the read models' identifier value column

EUI64_SCHEME = "eui64"
# An identifier whose namespace (HL7) or system (FHIR) the mapping does not list is kept as
# (`ns`, `<namespace or system>|<value>`): findable by its value (GET /assets?identifier=<value>)
# and linked like any identifier, yet never merged with another system's equal number.
QUALIFIED_SCHEME = "ns"
_EUI64 = re.compile(r"[0-9A-Fa-f]{2}(?:[-:]?[0-9A-Fa-f]{2}){7}")


def eui64(text: str) -> str | None:
    """`text` as an EUI-64 (16 upper-case hex digits, separators dropped), or None when it is not one."""
    value = text.strip()
    if not _EUI64.fullmatch(value):
        return None
    return re.sub(r"[-:]", "", value).upper()


def qualified(namespace: str, value: str) -> Identifier:
    """The identifier `value` of a namespace the mapping does not know, kept with its namespace."""
    return Identifier(scheme=QUALIFIED_SCHEME, value=qualify(namespace, "|", value))


def qualify(namespace: str, separator: str, value: str) -> str:
    """`<namespace><separator><value>`; a namespace too long for the read models' identifier column
    is replaced by a digest of it (the same namespace, the same digest)."""
    joined = f"{namespace}{separator}{value}"
    if len(joined) <= MAX_VALUE:
        return joined
    digest = "sha256:" + hashlib.sha256(namespace.encode()).hexdigest()[:32]
    return f"{digest}{separator}{value}"


def in_scheme(scheme: str, value: str) -> Identifier | None:
    """`value` in a mapped `scheme`, normalised where the scheme has one form (EUI-64); None if invalid."""
    if scheme == EUI64_SCHEME:
        normal = eui64(value)
        return Identifier(scheme=scheme, value=normal) if normal else None
    return Identifier(scheme=scheme, value=value)
