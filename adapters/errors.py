"""Adapter errors.

AdapterError
├── MalformedMessage   the input can never be translated as it is (poison): dead-letter it
├── MappingError       the mapping file itself is invalid (names the file, line and key)
└── SourceUnavailable  transient: the source or a dependency is unreachable; retry later
"""

from __future__ import annotations


class AdapterError(Exception):
    """Root of every error an adapter raises."""


class MalformedMessage(AdapterError):
    """The whole message cannot be read (unreadable encoding, no header row, not a CSV...)."""


class MappingError(AdapterError):
    """A mapping file failed validation; the message names file, line and key."""


class SourceUnavailable(AdapterError):
    """A transient failure: try again later."""
