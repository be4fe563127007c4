"""Refuse zip bombs before a single XLSX member is inflated.

An XLSX file is a zip of XML parts. Its central directory declares every member's compressed
and uncompressed size; Python's zipfile stops inflating a member at its declared size (and fails
the CRC check if the data disagrees), so checking the declared figures up front bounds the memory
any later read can use.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from adapters._files.grid import ReadLimits

_XLSX_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_ENCRYPTED = 0x1  # general purpose flag bit 0


def check_zip(data: bytes, *, filename: str, limits: ReadLimits) -> None:
    """Raise MalformedMessage unless `data` is a zip within the member, size and ratio limits."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise MalformedMessage(f"{filename}: not a readable XLSX (zip) file: {exc}") from exc
    if len(members) > limits.max_zip_members:
        raise MalformedMessage(
            f"{filename}: refused: {len(members)} zip members, more than {limits.max_zip_members}"
        )
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        raise MalformedMessage(
            f"{filename}: refused: members would inflate to {total} bytes, "
            f"more than the limit of {limits.max_uncompressed_bytes} (possible zip bomb)"
        )
    for member in members:
        # zipfile raises NotImplementedError / RuntimeError (not BadZipFile) for these on read.
        if member.compress_type not in _XLSX_METHODS:
            raise MalformedMessage(
                f"{filename}: refused: member {member.filename} uses zip compression method "
                f"{member.compress_type}; XLSX members are stored or deflated"
            )
        if member.flag_bits & _ENCRYPTED:
            raise MalformedMessage(f"{filename}: refused: member {member.filename} is encrypted")
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > limits.max_compression_ratio:
            raise MalformedMessage(
                f"{filename}: refused: member {member.filename} has compression ratio {ratio:.0f}:1, "
                f"more than {limits.max_compression_ratio:.0f}:1 (possible zip bomb)"
            )
