"""Suite-wide fixtures: real PostgreSQL and the Kafka-protocol broker are plugins in tests/fixtures."""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.kafka"]
