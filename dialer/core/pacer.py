"""The pacing model the core feeds (snapshot and outcome events) and the policy for a campaign."""

from __future__ import annotations

from pacing import make_policy
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

from dialer.config import CampaignSettings

DEFAULT_ABANDON_WINDOW_S = 30 * 86400.0


def campaign_policy(campaign: CampaignSettings, *, abandon_window_s: float = DEFAULT_ABANDON_WINDOW_S,
                    seed: int = 0) -> PacingPolicy:
    """The campaign's pacing policy; ``abandon_window_s`` is the rule pack's regulatory window."""
    return make_policy(campaign.pacing, abandon_window_s=abandon_window_s, seed=seed,
                       connect_limit_s=campaign.connect_limit_s)


__all__ = [
    "AgentView", "CallAbandoned", "CallAnswered", "CallConnected", "CallFailed", "CallLaunched", "CallView",
    "PacingPolicy", "Snapshot", "TalkEnded", "WrapUpEnded", "campaign_policy",
]
