"""The engine's decision-making as a sans-I/O state machine: ``EngineCore.handle(event, now) -> commands``.

Events and commands are the frozen dataclasses of :mod:`dialer.core.events`.
"""

from dialer.core.engine import EngineCore

__all__ = ["EngineCore"]
