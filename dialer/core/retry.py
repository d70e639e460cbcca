"""A lead's fate after an attempt, from the campaign's retry rules."""

from __future__ import annotations

from dialer.config import RetrySettings

NEVER_RETRIED = frozenset({"answered", "invalid", "rejected"})


def retry_delay_s(rules: RetrySettings, outcome: str, attempt_number: int) -> float | None:
    """Seconds until the next attempt, or None when the lead is closed."""
    if outcome in NEVER_RETRIED or attempt_number >= rules.max_attempts:
        return None
    rule = getattr(rules, outcome, None)
    if rule is None:
        raise ValueError(f"no retry rule for outcome {outcome!r}")
    return rule.retry_after_s
