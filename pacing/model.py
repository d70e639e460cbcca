"""The pacer's view of a campaign (snapshot), the outcome events it learns from, and the policy protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Union

AgentState = Literal["ready", "talking", "wrap_up", "paused"]
FailureOutcome = Literal["busy", "no_answer", "invalid", "rejected", "congestion", "failed"]


@dataclass(frozen=True, slots=True)
class AgentView:
    """One logged-in agent: its state and how long it has been in that state, seconds."""

    agent_id: str
    state: AgentState
    state_elapsed_s: float


@dataclass(frozen=True, slots=True)
class CallView:
    """One call launched and not yet answered or failed: how long it has been ringing, seconds."""

    call_id: str
    ringing_elapsed_s: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the pacer sees at one decision. `now` is any monotonic clock in seconds (virtual in the simulator)."""

    now: float
    agents: tuple[AgentView, ...]
    calls_in_flight: tuple[CallView, ...]
    answered_waiting: int = 0  # answered calls not yet bridged to an agent
    free_trunk_channels: int = 1_000_000  # capacity left on the campaign's trunks
    abandon_cap_active: bool = False  # the compliance gate says: progressive only


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
    outcome: FailureOutcome


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


OutcomeEvent = Union[CallLaunched, CallAnswered, CallFailed, CallConnected, CallAbandoned, TalkEnded, WrapUpEnded]


class PacingPolicy(Protocol):
    def observe(self, event: OutcomeEvent) -> None: ...

    def decide(self, snapshot: Snapshot) -> int: ...


@dataclass(frozen=True, slots=True)
class Capacity:
    """The counts every policy needs from a snapshot, and the hard cap on new calls no policy may exceed."""

    available_agents: int  # logged in and not paused
    ready_agents: int
    lines_busy: int  # calls ringing plus answered calls waiting for an agent
    max_new_calls: int  # min(lines-per-agent cap, trunk capacity) minus what is already busy, >= 0

    @property
    def progressive_calls(self) -> int:
        """One call in flight per ready agent, counting calls already ringing or waiting."""
        return max(0, min(self.ready_agents - self.lines_busy, self.max_new_calls))


def capacity(snapshot: Snapshot, max_lines_per_agent: float) -> Capacity:
    available = ready = 0
    for agent in snapshot.agents:
        if agent.state != "paused":
            available += 1
            if agent.state == "ready":
                ready += 1
    lines_busy = len(snapshot.calls_in_flight) + snapshot.answered_waiting
    line_cap = int(max_lines_per_agent * available + 1e-9) - lines_busy
    trunk_cap = snapshot.free_trunk_channels
    return Capacity(available, ready, lines_busy, max(0, min(line_cap, trunk_cap)))
