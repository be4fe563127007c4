"""Errors of the hub's own edge.

HubError
├── ConfigError        settings or wiring are wrong; refuse to start, say which setting
├── BusError           the event bus failed
│   └── PublishFailed  a publish was not acknowledged durably; nothing may be ACKed upstream
├── ArchiveError       the raw archive could not store or find a message
│   └── NotStored      a store that did not commit: the sender gets AR / 503, never a positive answer
└── ReplayError        a rebuild or as-of run could not complete
"""

from __future__ import annotations


class HubError(Exception):
    """Root of the hub's own errors."""


class ConfigError(HubError):
    """Invalid settings or wiring."""


class BusError(HubError):
    """The event bus failed."""


class PublishFailed(BusError):
    """A publish was not durably acknowledged."""


class ArchiveError(HubError):
    """The raw archive failed."""


class NotStored(ArchiveError):
    """The raw bytes were not committed; the sender must not get a positive answer."""


class ReplayError(HubError):
    """A replay could not complete."""
