"""The pacing model the core feeds (snapshot and outcome events), owned by pacing.model.

Until the pacing branch is merged the same shapes (from the agreed interfaces) are defined here;
the ImportError branch goes away with that merge.
"""

from __future__ import annotations

try:
    from pacing.model import (
        AgentView,
        CallAbandoned,
        CallAnswered,
        CallConnected,
        CallFailed,
        CallLaunched,
        CallView,
        PacingPolicy,
        Snapshot,
        TalkEnded,
        WrapUpEnded,
    )
except ImportError:  # pragma: no cover - transitional, see module docstring
    from dataclasses import dataclass
    from typing import Protocol

    @dataclass(frozen=True, slots=True)
    class AgentView:
        agent_id: str
        state: str
        state_elapsed_s: float

    @dataclass(frozen=True, slots=True)
    class CallView:
        call_id: str
        ringing_elapsed_s: float

    @dataclass(frozen=True, slots=True)
    class Snapshot:
        now: float
        agents: tuple[AgentView, ...]
        calls_in_flight: tuple[CallView, ...]
        answered_waiting: int
        free_trunk_channels: int
        abandon_cap_active: bool

    @dataclass(frozen=True, slots=True)
    class CallLaunched:
        at: float

    @dataclass(frozen=True, slots=True)
    class CallAnswered:
        at: float
        ring_s: float

    @dataclass(frozen=True, slots=True)
    class CallFailed:
        at: float
        ring_s: float
        outcome: str

    @dataclass(frozen=True, slots=True)
    class CallConnected:
        at: float
        answer_to_bridge_s: float

    @dataclass(frozen=True, slots=True)
    class CallAbandoned:
        at: float

    @dataclass(frozen=True, slots=True)
    class TalkEnded:
        at: float
        talk_s: float

    @dataclass(frozen=True, slots=True)
    class WrapUpEnded:
        at: float
        wrap_s: float

    class PacingPolicy(Protocol):
        def observe(self, event) -> None: ...
        def decide(self, snapshot: Snapshot) -> int: ...

__all__ = [
    "AgentView", "CallAbandoned", "CallAnswered", "CallConnected", "CallFailed", "CallLaunched", "CallView",
    "PacingPolicy", "Snapshot", "TalkEnded", "WrapUpEnded",
]
