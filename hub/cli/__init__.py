"""`hub`: the command line. Each sub-module registers one group of commands."""

from __future__ import annotations

import gc

from hub.cli import audit, dlq, ingest, keys, operate, replay, topics_cmd
from hub.cli.app import app


def main() -> None:
    # Projections hold ~1,000 parsed events per batch; CPython's default gen-0 threshold (700)
    # re-scans them constantly and costs about a quarter of apply time (see bench/).
    gc.set_threshold(10_000, 20, 20)
    app()


__all__ = ["app", "audit", "dlq", "ingest", "keys", "main", "operate", "replay", "topics_cmd"]
