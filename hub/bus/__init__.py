"""Event bus implementations of hub.ports.EventBus: `EmbeddedBus` (SQLite log) and `KafkaBus` (aiokafka).

Only hub.bootstrap chooses between them; everything else depends on hub.ports. Both place a keyed
record on the same partition (hub.bus.partitioner) and pass one contract suite
(tests/contract/test_bus_contract.py).
"""

from __future__ import annotations

from hub.bus.embedded import EmbeddedBus
from hub.bus.kafka import KafkaBus

__all__ = ["EmbeddedBus", "KafkaBus"]
