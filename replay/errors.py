"""Errors of the replay tools (rebuild, check, as-of, history).

ReplayFailed
 ├── LogIncomplete     the log no longer holds records a replay needs (retention was not forever,
 │                     or the topic was recreated): nothing can be rebuilt from it faithfully
 ├── RecordTampered    a log record no longer matches its audit ledger entry: a replay from it
 │                     would present altered history as fact
 ├── LiveKeptMoving    a rebuild could not catch up with a live projection that kept applying
 └── UnknownProjection no projection of that name is wired in this hub
"""

from __future__ import annotations


class ReplayFailed(Exception):
    """Root of the replay tools' errors. Live read models are left untouched when one is raised."""


class LogIncomplete(ReplayFailed):
    """Records a replay needs are missing from the log."""


class RecordTampered(ReplayFailed):
    """A log record read by a replay no longer hashes to its audit ledger entry (replay.audit.match)."""


class LiveKeptMoving(ReplayFailed):
    """The live projection applied faster than the rebuild could catch up before swapping."""


class UnknownProjection(ReplayFailed, LookupError):
    """No projection with that name."""
