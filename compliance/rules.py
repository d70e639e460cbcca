"""Pure compliance rules: functions of (number, rules, history, now). No clock reads, no I/O.

The ledger loads a number's `History` inside its reserve transaction and calls `decide`; dry-run checks call
the same function, so check and reserve share one code path. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

from compliance.numbers import ParsedNumber
from compliance.packs import WEEKDAYS, Caps, CallingWindow, RulePack
from compliance.reasons import PERMANENT, Reason, winning_reason

__all__ = [
    "AttemptRecord",
    "CallerIdRecord",
    "ConsentRecord",
    "DncEntry",
    "History",
    "NumberState",
    "NumberRules",
    "Verdict",
    "abandon_cap_active",
    "backoff_until",
    "caller_id_reason",
    "consent_reason",
    "decide",
    "dnc_reason",
    "number_rules",
    "window_reason",
    "next_window_opening",
]

DAY = timedelta(days=1)
ROLLING_PERIODS: tuple[tuple[str, timedelta], ...] = (
    ("rolling_24h", timedelta(hours=24)),
    ("rolling_7d", timedelta(days=7)),
    ("rolling_30d", timedelta(days=30)),
)
WINDOW_SEARCH_DAYS = 40  # longer than any run of holidays and closed weekdays a pack can express sensibly


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    at: datetime
    campaign: str
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class NumberState:
    """What outcomes taught the ledger about a number, across campaigns."""

    refusals: int = 0
    last_refusal_at: datetime | None = None
    invalid: bool = False
    last_abandon_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DncEntry:
    entry: str  # E.164 number, or prefix when is_prefix
    is_prefix: bool
    list_name: str
    campaign: str | None = None  # None: applies to every campaign

    def matches(self, e164: str, campaign: str) -> bool:
        if self.campaign is not None and self.campaign != campaign:
            return False
        return e164.startswith(self.entry) if self.is_prefix else e164 == self.entry


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    scope: str
    channel: str
    granted_at: datetime
    expires_at: datetime | None = None  # exclusive: consent no longer holds at this instant
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallerIdRecord:
    number: str
    marketing: bool


@dataclass(frozen=True, slots=True)
class History:
    """Everything the ledger knows that a decision for one number and campaign needs."""

    attempts: tuple[AttemptRecord, ...] = ()  # this number, every campaign, oldest first
    state: NumberState = NumberState()
    dnc: tuple[DncEntry, ...] = ()  # candidate entries (exact or prefix) for this number
    consents: tuple[ConsentRecord, ...] = ()
    caller_id: CallerIdRecord | None = None  # the campaign caller ID's registration, if any


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: Reason
    next_allowed_at: datetime | None
    inputs: dict = field(default_factory=dict)  # the facts that decided it, for the audit log


@dataclass(frozen=True, slots=True)
class NumberRules:
    """The pack's rules that apply to one number once regional rules are folded in."""

    window: CallingWindow
    allowed_weekdays: frozenset[int]
    caps_per_number: Caps
    caps_per_campaign: Caps
    regional: str | None


def _tighter_window(a: CallingWindow, b: CallingWindow) -> CallingWindow:
    return CallingWindow(
        start=max(a.start, b.start), end=min(a.end, b.end), weekdays=tuple(d for d in a.weekdays if d in b.weekdays)
    )


def _resolve_number_rules(rules: RulePack, e164_prefix: str) -> NumberRules:
    window, caps, regional_name = rules.calling_window, rules.caps_per_number, None
    for regional in rules.regional:
        if any(e164_prefix.startswith(prefix) for prefix in regional.prefixes):
            regional_name = regional.name
            if regional.calling_window is not None:
                window = _tighter_window(window, regional.calling_window)
            if regional.caps is not None:
                caps = caps.tighter(regional.caps)
    return NumberRules(
        window=window,
        allowed_weekdays=frozenset(WEEKDAYS.index(d) for d in window.weekdays),
        caps_per_number=caps,
        caps_per_campaign=rules.caps_per_campaign,
        regional=regional_name,
    )


# Keyed by the pack object's identity (hashing a nested pydantic model on every decision costs more than the
# decision); the entry keeps the pack alive so the id stays its own.
_NUMBER_RULES: dict[int, tuple[RulePack, int, dict[str, NumberRules]]] = {}


def number_rules(rules: RulePack, e164: str) -> NumberRules:
    """The pack's rules for this number; regional rules select by E.164 prefix."""
    entry = _NUMBER_RULES.get(id(rules))
    if entry is None or entry[0] is not rules:
        if len(_NUMBER_RULES) >= 256:
            _NUMBER_RULES.clear()
        key_length = max((len(p) for r in rules.regional for p in r.prefixes), default=0)
        entry = _NUMBER_RULES[id(rules)] = (rules, key_length, {})
    _, key_length, by_prefix = entry
    key = e164[:key_length]
    resolved = by_prefix.get(key)
    if resolved is None:
        resolved = by_prefix[key] = _resolve_number_rules(rules, key)
    return resolved


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=64)
def _holiday_calendar(country: str, subdivision: str | None):
    return holiday_calendars.country_holidays(country, subdiv=subdivision)


def _is_holiday(rules: RulePack, day: date) -> bool:
    spec = rules.holidays
    return spec is not None and day in _holiday_calendar(spec.country, spec.subdivision)


def window_reason(rules: RulePack, nrules: NumberRules, zones: tuple[str, ...], at: datetime) -> Reason | None:
    """outside_calling_window or holiday if `at` fails in any of the zones, else None."""
    start, end, weekdays = nrules.window.start, nrules.window.end, nrules.allowed_weekdays
    holiday = None
    for name in zones:
        local = at.astimezone(_zone(name))
        clock = local.time()
        if not (start <= clock < end) or local.weekday() not in weekdays:
            return Reason.outside_calling_window
        if holiday is None and rules.holidays is not None and _is_holiday(rules, local.date()):
            holiday = Reason.holiday
    return holiday


def next_window_opening(
    rules: RulePack, nrules: NumberRules, zones: tuple[str, ...], at: datetime
) -> datetime | None:
    """Earliest instant >= at inside the window (and not a holiday) in every zone; None within the horizon."""
    if window_reason(rules, nrules, zones, at) is None:
        return at
    # The set of passing instants is an intersection of per-zone intervals, so its earliest point is one
    # zone's local opening time.
    candidates = set()
    for name in zones:
        zone = _zone(name)
        first_day = at.astimezone(zone).date()
        for offset in range(WINDOW_SEARCH_DAYS):
            local_open = datetime.combine(first_day + offset * DAY, nrules.window.start, tzinfo=zone)
            instant = local_open.astimezone(at.tzinfo)
            if instant > at:
                candidates.add(instant)
    for candidate in sorted(candidates):
        if window_reason(rules, nrules, zones, candidate) is None:
            return candidate
    return None


def _rolling_bound(times: list[datetime], cap: int, period: timedelta, at: datetime) -> datetime:
    """Earliest instant >= at when fewer than `cap` of `times` (sorted) lie in the period before it."""
    horizon = at - period
    inside = [t for t in times if t > horizon]
    if len(inside) < cap:
        return at
    if cap == 0:
        return datetime.max.replace(tzinfo=at.tzinfo)
    return inside[len(inside) - cap] + period


def _calendar_day_bound(times: list[datetime], cap: int, zones: tuple[str, ...], at: datetime) -> datetime:
    bound = at
    for name in zones:
        zone = _zone(name)
        today = at.astimezone(zone).date()
        if sum(1 for t in times if t.astimezone(zone).date() == today) >= cap:
            if cap == 0:
                return datetime.max.replace(tzinfo=at.tzinfo)
            next_midnight = datetime.combine(today + DAY, time(0), tzinfo=zone).astimezone(at.tzinfo)
            bound = max(bound, next_midnight)
    return bound


def _caps_bound(caps: Caps, times: list[datetime], zones: tuple[str, ...], at: datetime) -> datetime:
    bound = at
    for name, period in ROLLING_PERIODS:
        cap = getattr(caps, name)
        if cap is not None:
            bound = max(bound, _rolling_bound(times, cap, period, at))
    if caps.calendar_day is not None:
        bound = max(bound, _calendar_day_bound(times, caps.calendar_day, zones, at))
    return bound


def backoff_until(rules: RulePack, state: NumberState) -> datetime | None:
    """After n refusals the next attempt waits base * 2^(n-1) from the last refusal."""
    base = rules.refusals.backoff_base_s
    if base is None or state.refusals < 1 or state.last_refusal_at is None:
        return None
    return state.last_refusal_at + timedelta(seconds=base * 2 ** (state.refusals - 1))


def _recent_abandon_until(rules: RulePack, state: NumberState) -> datetime | None:
    block = rules.abandon.recent_abandon_block_s
    if block is None or state.last_abandon_at is None:
        return None
    return state.last_abandon_at + timedelta(seconds=block)


def dnc_reason(e164: str, campaign: str, entries: tuple[DncEntry, ...]) -> DncEntry | None:
    return next((entry for entry in entries if entry.matches(e164, campaign)), None)


def consent_reason(rules: RulePack, campaign: str, consents: tuple[ConsentRecord, ...], at: datetime) -> Reason | None:
    """None when a consent in scope holds at `at`; consent_expired if one did but expired; else no_consent."""
    if not rules.consent.required:
        return None
    expired = False
    for consent in consents:
        if consent.scope not in (rules.consent.scope, campaign):
            continue
        if consent.granted_at > at or (consent.revoked_at is not None and consent.revoked_at <= at):
            continue
        if consent.expires_at is None or at < consent.expires_at:
            return None
        expired = True
    return Reason.consent_expired if expired else Reason.no_consent


def caller_id_reason(rules: RulePack, record: CallerIdRecord | None) -> Reason | None:
    required = rules.caller_id
    if not required.registration_required and not required.marketing_flag_required:
        return None
    if record is None or (required.marketing_flag_required and not record.marketing):
        return Reason.caller_id_unregistered
    return None


def abandon_cap_active(rules: RulePack, live_answered: int, abandoned: int) -> bool:
    """True when one more abandoned call would push the campaign's rate over the pack's ceiling.

    live_answered counts every call a person answered, abandoned ones included, over the pack's window.
    """
    ceiling = rules.abandon.max_rate
    if ceiling is None:
        return False
    return (abandoned + 1) > ceiling * (live_answered + 1)


def _permanent_reasons(
    number: ParsedNumber, rules: RulePack, history: History, now: datetime, campaign: str, inputs: dict
) -> list[Reason]:
    reasons = []
    if history.state.invalid:
        reasons.append(Reason.invalid_number)
    hit = dnc_reason(number.e164, campaign, history.dnc)
    if hit is not None:
        inputs["dnc_list"] = hit.list_name
        reasons.append(Reason.dnc)
    consent = consent_reason(rules, campaign, history.consents, now)
    if consent is not None:
        reasons.append(consent)
    block_after = rules.refusals.block_after
    if block_after is not None and history.state.refusals > block_after:
        reasons.append(Reason.refused_too_often)
    caller_id = caller_id_reason(rules, history.caller_id)
    if caller_id is not None:
        reasons.append(caller_id)
    return reasons


class _TimeRules:
    """The temporary rules: each gives the earliest instant >= t at which it passes."""

    __slots__ = ("rules", "nrules", "zones", "all_times", "campaign_times", "fixed_bound")

    def __init__(self, number: ParsedNumber, rules: RulePack, nrules: NumberRules, history: History, campaign: str):
        self.rules, self.nrules, self.zones = rules, nrules, number.time_zones
        self.all_times = [a.at for a in history.attempts]
        self.campaign_times = [a.at for a in history.attempts if a.campaign == campaign]
        self.fixed_bound = {
            Reason.backoff: backoff_until(rules, history.state),
            Reason.recent_abandon: _recent_abandon_until(rules, history.state),
        }

    def bounds(self, at: datetime) -> dict[Reason, datetime]:
        """For each failing temporary rule at `at`, the earliest instant it could pass."""
        failing: dict[Reason, datetime] = {}
        window = window_reason(self.rules, self.nrules, self.zones, at)
        if window is not None:
            opening = next_window_opening(self.rules, self.nrules, self.zones, at)
            failing[window] = opening if opening is not None else datetime.max.replace(tzinfo=at.tzinfo)
        caps = max(
            _caps_bound(self.nrules.caps_per_number, self.all_times, self.zones, at),
            _caps_bound(self.nrules.caps_per_campaign, self.campaign_times, self.zones, at),
        )
        if caps > at:
            failing[Reason.frequency_cap] = caps
        for reason, until in self.fixed_bound.items():
            if until is not None and until > at:
                failing[reason] = until
        return failing

    def earliest_pass(self, at: datetime) -> datetime | None:
        for _ in range(64):
            failing = self.bounds(at)
            if not failing:
                return at
            at = max(failing.values())
            if at.year == datetime.max.year:
                return None
        return None


def decide(number: ParsedNumber, rules: RulePack, history: History, now: datetime, *, campaign: str) -> Verdict:
    """May `number` be dialled for `campaign` at `now`? Permanent reasons win, then the temporary ones."""
    nrules = number_rules(rules, number.e164)
    inputs: dict = {"zones": list(number.time_zones)}
    if nrules.regional:
        inputs["regional"] = nrules.regional
    permanent = _permanent_reasons(number, rules, history, now, campaign, inputs)
    if permanent:
        return Verdict(False, winning_reason(permanent), None, inputs)
    time_rules = _TimeRules(number, rules, nrules, history, campaign)
    failing = time_rules.bounds(now)
    inputs["attempts_24h"] = sum(1 for t in time_rules.all_times if t > now - ROLLING_PERIODS[0][1])
    if history.state.refusals:
        inputs["refusals"] = history.state.refusals
    if not failing:
        return Verdict(True, Reason.ok, None, inputs)
    inputs["local_times"] = [now.astimezone(_zone(z)).isoformat(timespec="seconds") for z in number.time_zones[:3]]
    return Verdict(False, winning_reason(failing), time_rules.earliest_pass(now), inputs)


assert all(r in Reason for r in PERMANENT)
