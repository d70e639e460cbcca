"""A campaign's compliance settings (validated config section) and how they tighten the chosen rule pack."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compliance.packs import Caps, CallingWindow, HolidayRule, PackError, RulePack, UnknownPack, load_pack

__all__ = ["CampaignCompliance", "LooseningError", "campaign_timing_problems", "effective_rules"]


class CampaignCompliance(BaseModel):
    """Every field but rule_pack is optional and may only tighten the pack; a loosening value is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_pack: str = Field("us", description="rule pack name under config/packs/ (cn, us, uk)")
    calling_window: CallingWindow | None = Field(None, description="narrower local calling window")
    holidays: HolidayRule | None = Field(None, description="also refuse calls on these public holidays")
    caps_per_number: Caps | None = Field(None, description="lower caps per number across campaigns")
    caps_per_campaign: Caps | None = Field(None, description="lower caps per number within this campaign")
    consent_required: bool | None = Field(None, description="true: require consent even if the pack does not")
    refusal_backoff_base_s: float | None = Field(None, ge=0, description="longer refusal back-off base, seconds")
    refusal_block_after: int | None = Field(None, ge=0, description="block after fewer refusals")
    recent_abandon_block_s: float | None = Field(None, ge=0, description="longer pause after an abandon, seconds")
    max_abandon_rate: float | None = Field(None, ge=0, le=1, description="lower abandon-rate ceiling, 0..1")
    min_ring_s: float | None = Field(None, gt=0, description="ring longer before giving up, seconds")
    recording_retention_days: int | None = Field(None, ge=0, description="keep recordings longer, days")

    @model_validator(mode="after")
    def _pack_exists_and_is_only_tightened(self) -> "CampaignCompliance":
        # Surfaces an unknown pack or a loosening override when the config is loaded, with its key path.
        try:
            effective_rules(load_pack(self.rule_pack), self)
        except (UnknownPack, PackError) as exc:
            raise ValueError(str(exc)) from exc
        return self


class LooseningError(ValueError):  # a ValueError, so pydantic reports it under the config key path
    """A campaign override that would loosen its rule pack."""


def _narrower(pack_window: CallingWindow, wanted: CallingWindow, where: str, problems: list[str]) -> CallingWindow:
    if not pack_window.contains(wanted):
        problems.append(
            f"{where}: {wanted.start}-{wanted.end} {list(wanted.weekdays)} is not inside the pack's "
            f"{pack_window.start}-{pack_window.end} {list(pack_window.weekdays)}"
        )
        return pack_window
    return wanted


def _intersect(a: CallingWindow, b: CallingWindow) -> CallingWindow:
    return CallingWindow(
        start=max(a.start, b.start), end=min(a.end, b.end), weekdays=tuple(d for d in a.weekdays if d in b.weekdays)
    )


def _at_least(pack_value, wanted, name: str, problems: list[str], *, smaller_is_tighter: bool):
    if wanted is None:
        return pack_value
    if pack_value is None:
        return wanted
    looser = wanted > pack_value if smaller_is_tighter else wanted < pack_value
    if looser:
        problems.append(f"{name} {wanted} is looser than the pack's {pack_value}")
        return pack_value
    return wanted


def effective_rules(pack: RulePack, overrides: CampaignCompliance) -> RulePack:
    """The pack with the campaign's tightening applied; raises LooseningError naming each looser value."""
    problems: list[str] = []
    if overrides.rule_pack != pack.name:
        problems.append(f"rule_pack {overrides.rule_pack!r} does not name pack {pack.name!r}")
    changes: dict = {}
    window = pack.calling_window
    if overrides.calling_window is not None:
        window = _narrower(pack.calling_window, overrides.calling_window, "calling_window", problems)
        changes["calling_window"] = window
        changes["regional"] = tuple(
            r.model_copy(update={"calling_window": _intersect(r.calling_window, window) if r.calling_window else None})
            for r in pack.regional
        )
    if overrides.holidays is not None:
        if pack.holidays is not None and overrides.holidays != pack.holidays:
            problems.append(f"holidays {overrides.holidays} would replace the pack's {pack.holidays}")
        changes["holidays"] = overrides.holidays
    for field in ("caps_per_number", "caps_per_campaign"):
        wanted: Caps | None = getattr(overrides, field)
        if wanted is not None:
            current: Caps = getattr(pack, field)
            problems.extend(f"{field}.{p}" for p in current.loosened_by(wanted))
            changes[field] = current.tighter(wanted)
    if overrides.consent_required is False and pack.consent.required:
        problems.append("consent_required false is looser than the pack's true")
    if overrides.consent_required:
        changes["consent"] = pack.consent.model_copy(update={"required": True})
    refusals = pack.refusals.model_copy(
        update={
            "backoff_base_s": _at_least(
                pack.refusals.backoff_base_s, overrides.refusal_backoff_base_s, "refusal_backoff_base_s", problems,
                smaller_is_tighter=False,
            ),
            "block_after": _at_least(
                pack.refusals.block_after, overrides.refusal_block_after, "refusal_block_after", problems,
                smaller_is_tighter=True,
            ),
        }
    )
    abandon = pack.abandon.model_copy(
        update={
            "recent_abandon_block_s": _at_least(
                pack.abandon.recent_abandon_block_s, overrides.recent_abandon_block_s, "recent_abandon_block_s",
                problems, smaller_is_tighter=False,
            ),
            "max_rate": _at_least(
                pack.abandon.max_rate, overrides.max_abandon_rate, "max_abandon_rate", problems,
                smaller_is_tighter=True,
            ),
        }
    )
    changes["refusals"], changes["abandon"] = refusals, abandon
    changes["min_ring_s"] = _at_least(
        pack.min_ring_s, overrides.min_ring_s, "min_ring_s", problems, smaller_is_tighter=False
    )
    changes["recording_retention_days"] = _at_least(
        pack.recording_retention_days, overrides.recording_retention_days, "recording_retention_days", problems,
        smaller_is_tighter=False,
    )
    if problems:
        raise LooseningError(f"campaign overrides would loosen rule pack {pack.name!r}: " + "; ".join(problems))
    return pack.model_validate({**pack.model_dump(), **{k: v for k, v in changes.items()}})


def campaign_timing_problems(rules: RulePack, *, ring_timeout_s: float, connect_limit_s: float) -> list[str]:
    """What in a campaign's call timing breaks its pack (ring too short, connect limit too long); empty if none."""
    problems = []
    if rules.min_ring_s is not None and ring_timeout_s < rules.min_ring_s:
        problems.append(f"ring_timeout_s {ring_timeout_s} is shorter than pack {rules.name!r}'s min_ring_s {rules.min_ring_s}")
    limit = rules.abandon.connect_limit_s
    if limit is not None and connect_limit_s > limit:
        problems.append(f"connect_limit_s {connect_limit_s} is longer than pack {rules.name!r}'s connect_limit_s {limit}")
    return problems
