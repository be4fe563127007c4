"""Suite-wide fixtures: real PostgreSQL and the Kafka-protocol broker are plugins in tests/fixtures.

tests.fixtures.wire checks every test's published records against the exported schemas.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import pytest
import structlog

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.kafka", "tests.fixtures.wire"]

# pytest-xdist's workers start with COLUMNS=80 and LINES=24; the CLI sizes its tables by COLUMNS,
# so output would depend on how the suite was run. Tests that want a width set it themselves.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _logging_configuration_restored() -> Iterator[None]:
    """A command run in-process (typer's CliRunner) configures logging for the whole process, at
    its own level: the next test would then capture nothing below warning. Put it back after each."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
