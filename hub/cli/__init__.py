"""`hub`: the command line. Each sub-module registers one group of commands."""

from __future__ import annotations

from hub.cli import dlq, ingest, operate, topics_cmd
from hub.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "dlq", "ingest", "main", "operate", "topics_cmd"]
