"""The asyncio shell around the engine core: `Engine` (one node) and the `dialer run` daemon."""

from dialer.runtime.engine import Engine

__all__ = ["Engine"]
