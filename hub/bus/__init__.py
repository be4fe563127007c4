"""Event bus implementations of hub.ports.EventBus: `EmbeddedBus` (SQLite log) and `KafkaBus` (aiokafka).

Only hub.bootstrap chooses between them; everything else depends on hub.ports. Both place a keyed
record on the same partition (hub.bus.partitioner) and pass one contract suite
(tests/contract/test_bus_contract.py).

`KafkaBus` is imported when first asked for: a hub on the embedded bus never loads aiokafka
(a few MB of every process's RSS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.bus.embedded import EmbeddedBus

if TYPE_CHECKING:
    from hub.bus.kafka import KafkaBus

__all__ = ["EmbeddedBus", "KafkaBus"]


def __getattr__(name: str) -> Any:
    if name == "KafkaBus":
        from hub.bus.kafka import KafkaBus  # noqa: PLC0415

        return KafkaBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
