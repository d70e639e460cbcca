"""Jurisdiction rule packs: YAML data under config/packs/, validated into frozen pydantic models.

A campaign picks a pack and may tighten it (compliance/settings.py: CampaignCompliance); `effective_rules`
applies the tightening and refuses anything that would loosen the pack. The shipped packs are configurable
product defaults, not legal advice.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "PACKS_DIR",
    "Caps",
    "CallingWindow",
    "RulePack",
    "RegionalRules",
    "PackError",
    "UnknownPack",
    "load_pack",
    "known_packs",
]

PACKS_DIR = Path(__file__).resolve().parent.parent / "config" / "packs"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallingWindow(Frozen):
    start: time = Field(..., description="first allowed local time of the callee (inclusive), HH:MM[:SS]")
    end: time = Field(..., description="first local time no longer allowed (exclusive), HH:MM[:SS]")
    weekdays: tuple[Weekday, ...] = Field(WEEKDAYS, description="local weekdays calls are allowed on")

    @model_validator(mode="after")
    def _ordered(self) -> "CallingWindow":
        if self.start >= self.end:
            raise ValueError(f"window start {self.start} must be before end {self.end}")
        if not self.weekdays:
            raise ValueError("weekdays must allow at least one day")
        return self

    def contains(self, other: "CallingWindow") -> bool:
        return self.start <= other.start and other.end <= self.end and set(other.weekdays) <= set(self.weekdays)


class Caps(Frozen):
    """Attempts allowed per number in each period; null: no cap for that period."""

    rolling_24h: int | None = Field(None, ge=0, description="attempts per number in any 24 hours")
    rolling_7d: int | None = Field(None, ge=0, description="attempts per number in any 7 days")
    rolling_30d: int | None = Field(None, ge=0, description="attempts per number in any 30 days")
    calendar_day: int | None = Field(None, ge=0, description="attempts per number per local calendar day")

    def tighter(self, other: "Caps") -> "Caps":
        """Each period's smaller cap."""
        merged = {}
        for name in type(self).model_fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            merged[name] = theirs if mine is None else mine if theirs is None else min(mine, theirs)
        return Caps(**merged)

    def loosened_by(self, other: "Caps") -> list[str]:
        problems = []
        for name in type(self).model_fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and (theirs is None or theirs > mine):
                problems.append(f"{name} {theirs} is looser than the pack's {mine}")
        return problems


class ConsentRule(Frozen):
    required: bool = Field(False, description="calls need a consent record whose scope matches")
    scope: str = Field("marketing", min_length=1, description="consent scope that covers this pack's calls")


class CallerIdRule(Frozen):
    registration_required: bool = Field(False, description="the campaign caller ID must be registered")
    marketing_flag_required: bool = Field(False, description="the registration must be flagged as marketing")


class RefusalRule(Frozen):
    backoff_base_s: float | None = Field(
        None, ge=0, description="after n refusals the next attempt waits backoff_base_s * 2^(n-1), seconds"
    )
    block_after: int | None = Field(None, ge=0, description="more than this many refusals blocks the number")


class AbandonRule(Frozen):
    max_rate: float | None = Field(None, ge=0, le=1, description="abandoned / live-answered calls per campaign")
    window_s: float = Field(86400.0, gt=0, description="period the abandon rate is measured over, seconds")
    recent_abandon_block_s: float | None = Field(
        None, ge=0, description="no repeat call to a number within this long after an abandoned call, seconds"
    )
    connect_limit_s: float | None = Field(None, gt=0, description="answered call must reach an agent within, seconds")
    safe_harbour_message: bool = Field(False, description="play a message on every abandoned call")


class HolidayRule(Frozen):
    country: str = Field(..., min_length=2, max_length=3, description="`holidays` country code, e.g. CN")
    subdivision: str | None = Field(None, description="`holidays` subdivision, e.g. a state")


class RegionalRules(Frozen):
    """Rules for numbers starting with one of `prefixes` (E.164, e.g. "+1305"); each field tightens the pack."""

    name: str = Field(..., min_length=1)
    prefixes: tuple[str, ...] = Field(..., min_length=1, description="E.164 prefixes, e.g. +1305")
    calling_window: CallingWindow | None = None
    caps: Caps | None = None

    @model_validator(mode="after")
    def _e164_prefixes(self) -> "RegionalRules":
        for prefix in self.prefixes:
            if not (prefix.startswith("+") and prefix[1:].isdigit()):
                raise ValueError(f"prefix {prefix!r} must be '+' followed by digits")
        return self


class RulePack(Frozen):
    name: str = Field(..., pattern=r"^[a-z0-9_-]+$")
    version: str = Field(..., min_length=1, description="changes whenever a rule changes; recorded in every audit row")
    description: str = ""
    calling_window: CallingWindow
    holidays: HolidayRule | None = Field(None, description="no calls on this country's public holidays")
    caps_per_number: Caps = Field(Caps(), description="attempts per number across all campaigns")
    caps_per_campaign: Caps = Field(Caps(), description="attempts per number within one campaign")
    consent: ConsentRule = ConsentRule()
    caller_id: CallerIdRule = CallerIdRule()
    refusals: RefusalRule = RefusalRule()
    abandon: AbandonRule = AbandonRule()
    min_ring_s: float | None = Field(None, gt=0, description="ring at least this long before giving up, seconds")
    recording_retention_days: int | None = Field(
        None, ge=0, description="recordings are kept at least this many days"
    )
    regional: tuple[RegionalRules, ...] = ()

    def history_horizon_s(self) -> float:
        """How far back the attempt history a decision needs reaches, seconds."""
        horizon = 86400.0
        caps = [self.caps_per_number, self.caps_per_campaign, *(r.caps for r in self.regional if r.caps)]
        for cap in caps:
            if cap.rolling_30d is not None:
                horizon = max(horizon, 30 * 86400.0)
            elif cap.rolling_7d is not None:
                horizon = max(horizon, 7 * 86400.0)
        return horizon + 86400.0  # a calendar day in the farthest zone starts up to 26 h before now


class UnknownPack(LookupError):
    pass


def known_packs(packs_dir: Path = PACKS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(packs_dir).glob("*.yaml"))


class PackError(ValueError):
    """A pack file that cannot be used; the message names the file and every key path at fault."""


@lru_cache(maxsize=64)
def _load_file(path: Path, _mtime_ns: int) -> RulePack:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PackError(f"{path}: cannot load rule pack: {exc}") from exc
    try:
        pack = RulePack.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise PackError(f"{path}: {problems}") from exc
    if pack.name != path.stem:
        raise PackError(f"{path}: name {pack.name!r} must match the file name {path.stem!r}")
    return pack


def load_pack(name: str, packs_dir: Path = PACKS_DIR) -> RulePack:
    """Load <packs_dir>/<name>.yaml; unknown name -> UnknownPack listing the known packs."""
    path = Path(packs_dir) / f"{name}.yaml"
    if not name or "/" in name or not path.is_file():
        known = ", ".join(known_packs(packs_dir)) or "none"
        raise UnknownPack(f"unknown rule pack {name!r}; known packs in {packs_dir}: {known}")
    return _load_file(path.resolve(), path.stat().st_mtime_ns)
