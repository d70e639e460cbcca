"""Pure pacing maths and policies, plus the simulator. No I/O, no clock reads: time is passed in.

The pure API (usable without the engine)::

    from pacing import make_policy, PacingSettings, Snapshot, AgentView, CallView, CallAnswered, ...

    policy = make_policy(PacingSettings(mode="predictive"), abandon_window_s=86400)
    policy.observe(CallAnswered(at=12.0, ring_s=9.5))      # feed every outcome as it happens
    n = policy.decide(Snapshot(                            # ask every interval_s: how many calls to launch now
        now=13.0,
        agents=(AgentView("a1", "ready", 4.0), AgentView("a2", "talking", 95.0), AgentView("a3", "paused", 30.0)),
        calls_in_flight=(CallView("c7", 6.5),),
        answered_waiting=0, free_trunk_channels=30, abandon_cap_active=False))

Snapshot: `now` (seconds, any monotonic or virtual clock), agents with state ready | talking | wrap_up | paused
and seconds in that state, calls launched and not yet answered or failed with their seconds of ringing, answered
calls still waiting for an agent, free trunk channels, and whether the compliance gate's abandonment cap is on.

Outcome events (frozen dataclasses, `at` in the same clock): CallLaunched(at), CallAnswered(at, ring_s),
CallFailed(at, ring_s, outcome: busy|no_answer|invalid|rejected|congestion|failed), CallConnected(at,
answer_to_bridge_s), CallAbandoned(at) (answered, no agent within the connect limit), TalkEnded(at, talk_s),
WrapUpEnded(at, wrap_s).

Policies (`settings.mode`): preview and progressive (one call per ready agent, counting calls already ringing);
predictive (expected abandoned per answered call under target, closed loop over the regulatory window
`abandon_window_s`); adapt (a VICIdial-style ADAPT controller, for comparison). Every policy respects
max_lines_per_agent and free_trunk_channels, never counts paused agents, and is progressive while
abandon_cap_active. Decisions are deterministic given the events and snapshots (`seed` is reserved for
randomised policies).
"""

from __future__ import annotations

from pacing.model import (
    AgentState,
    AgentView,
    CallAbandoned,
    CallAnswered,
    CallConnected,
    CallFailed,
    CallLaunched,
    CallView,
    OutcomeEvent,
    PacingPolicy,
    Snapshot,
    TalkEnded,
    WrapUpEnded,
)
from pacing.settings import PacingSettings

__all__ = [
    "AgentState",
    "AgentView",
    "CallAbandoned",
    "CallAnswered",
    "CallConnected",
    "CallFailed",
    "CallLaunched",
    "CallView",
    "OutcomeEvent",
    "PacingPolicy",
    "PacingSettings",
    "Snapshot",
    "TalkEnded",
    "WrapUpEnded",
    "make_policy",
]


def make_policy(
    settings: PacingSettings, *, abandon_window_s: float, seed: int = 0, connect_limit_s: float = 2.0
) -> PacingPolicy:
    """The policy `settings.mode` names. `connect_limit_s` is the campaign's (answered call to agent, seconds)."""
    from pacing.adapt import AdaptPolicy
    from pacing.policies import PredictivePolicy, PreviewPolicy, ProgressivePolicy

    if settings.mode == "preview":
        return PreviewPolicy(settings)
    if settings.mode == "progressive":
        return ProgressivePolicy(settings)
    if settings.mode == "adapt":
        return AdaptPolicy(settings, abandon_window_s=abandon_window_s)
    return PredictivePolicy(settings, abandon_window_s=abandon_window_s, connect_limit_s=connect_limit_s)
