"""Recording retention: which recordings may be deleted. Pure: file ages in, choice out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from compliance.packs import RulePack

__all__ = ["Recording", "RetentionError", "keep_days", "recordings_to_delete"]


class RetentionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Recording:
    path: Path
    finished_at: datetime  # when the recording was closed (file modification time)


def keep_days(rules: RulePack, requested_days: int | None) -> int:
    """Days recordings are kept: the operator's choice, never below the pack's minimum."""
    minimum = rules.recording_retention_days
    if requested_days is None:
        if minimum is None:
            raise RetentionError(f"pack {rules.name!r} sets no minimum retention; say how many days to keep")
        return minimum
    if minimum is not None and requested_days < minimum:
        raise RetentionError(f"keeping {requested_days} days is below pack {rules.name!r}'s minimum of {minimum} days")
    return requested_days


def recordings_to_delete(recordings: list[Recording], days: int, now: datetime) -> list[Recording]:
    """Recordings finished strictly more than `days` days before now, oldest first."""
    cutoff = now - timedelta(days=days)
    return sorted((r for r in recordings if r.finished_at < cutoff), key=lambda r: r.finished_at)
