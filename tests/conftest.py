"""Suite-wide fixtures: real PostgreSQL and the Kafka-protocol broker are plugins in tests/fixtures.

tests.fixtures.wire checks every test's published records against the exported schemas.
"""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.kafka", "tests.fixtures.wire"]
