from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.numbers import normalize
from compliance.packs import load_pack
from compliance.reasons import Reason
from compliance.rules import (
    AttemptRecord,
    CallerIdRecord,
    ConsentRecord,
    DncEntry,
    History,
    NumberState,
    abandon_cap_active,
    decide,
)

UTC = timezone.utc
CN, US, UK = load_pack("cn"), load_pack("us"), load_pack("uk")
CN_NUMBER = normalize("+8613812348000")
DC_NUMBER = normalize("+12025550100")  # Washington DC, America/New_York
MIAMI = normalize("+13055550123")  # Florida
TOLL_FREE = normalize("+18005550100")  # every NANP zone
LONDON = normalize("+442079460000")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MARKETING = ConsentRecord("marketing", "web", datetime(2026, 1, 1, tzinfo=UTC))
CN_OK = History(consents=(MARKETING,), caller_id=CallerIdRecord("+8610123", marketing=True))


def local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def cn_decide(history: History, now: datetime, campaign: str = "c1"):
    return decide(CN_NUMBER, CN, history, now, campaign=campaign)


def test_window_is_start_inclusive_end_exclusive_to_the_second():
    assert cn_decide(CN_OK, local("Asia/Shanghai", 2026, 5, 4, 20, 59, 59)).allowed
    late = cn_decide(CN_OK, local("Asia/Shanghai", 2026, 5, 4, 21, 0, 0))
    assert late.reason is Reason.outside_calling_window
    assert late.next_allowed_at == local("Asia/Shanghai", 2026, 5, 5, 8, 0, 0)
    assert cn_decide(CN_OK, local("Asia/Shanghai", 2026, 5, 5, 8, 0, 0)).allowed
    early = cn_decide(CN_OK, local("Asia/Shanghai", 2026, 5, 5, 7, 59, 59))
    assert not early.allowed and early.next_allowed_at == local("Asia/Shanghai", 2026, 5, 5, 8, 0, 0)


def test_florida_closes_at_20_while_the_rest_of_the_us_runs_to_21():
    at = local("America/New_York", 2026, 6, 10, 20, 30)
    assert decide(DC_NUMBER, US, History(), at, campaign="c").allowed
    florida = decide(MIAMI, US, History(), at, campaign="c")
    assert florida.reason is Reason.outside_calling_window and florida.inputs["regional"] == "florida"
    assert decide(MIAMI, US, History(), local("America/New_York", 2026, 6, 10, 19, 59, 59), campaign="c").allowed


def test_dst_start_and_end_days_use_the_local_offset_of_that_day():
    # 2026-03-08: New York springs forward at 02:00; 08:00 EDT is 12:00 UTC (it was 13:00 UTC the day before).
    before = decide(DC_NUMBER, US, History(), datetime(2026, 3, 8, 11, 59, 59, tzinfo=UTC), campaign="c")
    assert before.reason is Reason.outside_calling_window
    assert before.next_allowed_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert decide(DC_NUMBER, US, History(), datetime(2026, 3, 8, 12, 0, tzinfo=UTC), campaign="c").allowed
    # 2026-11-01: falls back; 21:00 EST is 02:00 UTC next day.
    assert decide(DC_NUMBER, US, History(), datetime(2026, 11, 2, 1, 59, 59, tzinfo=UTC), campaign="c").allowed
    closed = decide(DC_NUMBER, US, History(), datetime(2026, 11, 2, 2, 0, tzinfo=UTC), campaign="c")
    assert closed.next_allowed_at == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    # London springs forward 2026-03-29: 08:00 BST is 07:00 UTC.
    assert decide(LONDON, UK, History(), datetime(2026, 3, 29, 7, 0, tzinfo=UTC), campaign="c").allowed
    assert not decide(LONDON, UK, History(), datetime(2026, 3, 28, 7, 0, tzinfo=UTC), campaign="c").allowed


def test_number_spanning_zones_passes_only_when_every_zone_is_inside():
    # 21:30 in New York is 18:30 in Los Angeles: only one zone is open, so the call is refused.
    at = local("America/New_York", 2026, 6, 10, 21, 30)
    assert decide(DC_NUMBER, US, History(), at - timedelta(hours=1), campaign="c").allowed
    refused = decide(TOLL_FREE, US, History(), at, campaign="c")
    assert refused.reason is Reason.outside_calling_window
    opening = refused.next_allowed_at
    assert decide(TOLL_FREE, US, History(), opening, campaign="c").allowed
    assert not decide(TOLL_FREE, US, History(), opening - timedelta(seconds=1), campaign="c").allowed


def test_weekday_and_holiday_rules():
    weekdays = {"start": "08:00", "end": "21:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}
    pack = type(CN).model_validate({**CN.model_dump(), "holidays": {"country": "CN"}, "calling_window": weekdays})
    national_day = cn_history_decide(pack, local("Asia/Shanghai", 2026, 10, 1, 10, 0))
    assert national_day.reason is Reason.holiday
    assert national_day.next_allowed_at.astimezone(SHANGHAI).date() > datetime(2026, 10, 7).date()
    saturday = cn_history_decide(pack, local("Asia/Shanghai", 2026, 5, 9, 10, 0))
    assert saturday.reason is Reason.outside_calling_window
    assert saturday.next_allowed_at == local("Asia/Shanghai", 2026, 5, 11, 8, 0)


def cn_history_decide(pack, now):
    return decide(CN_NUMBER, pack, CN_OK, now, campaign="c1")


def test_consent_expiring_mid_day_revoked_and_out_of_scope():
    noon = local("Asia/Shanghai", 2026, 5, 4, 14, 0)
    expiring = ConsentRecord("marketing", "sms", datetime(2026, 1, 1, tzinfo=UTC), expires_at=noon)
    history = History(consents=(expiring,), caller_id=CN_OK.caller_id)
    assert cn_decide(history, noon - timedelta(seconds=1)).allowed
    expired = cn_decide(history, noon)
    assert expired.reason is Reason.consent_expired and expired.next_allowed_at is None
    revoked = ConsentRecord("marketing", "web", datetime(2026, 1, 1, tzinfo=UTC), revoked_at=noon - timedelta(hours=1))
    assert cn_decide(History(consents=(revoked,), caller_id=CN_OK.caller_id), noon).reason is Reason.no_consent
    other_scope = ConsentRecord("surveys", "web", datetime(2026, 1, 1, tzinfo=UTC))
    assert cn_decide(History(consents=(other_scope,), caller_id=CN_OK.caller_id), noon).reason is Reason.no_consent
    campaign_scope = ConsentRecord("c1", "web", datetime(2026, 1, 1, tzinfo=UTC))
    assert cn_decide(History(consents=(campaign_scope,), caller_id=CN_OK.caller_id), noon).allowed
    not_yet = ConsentRecord("marketing", "web", noon + timedelta(hours=1))
    assert cn_decide(History(consents=(not_yet,), caller_id=CN_OK.caller_id), noon).reason is Reason.no_consent


def test_caps_at_exactly_the_limit_and_next_allowed_at():
    now = local("Asia/Shanghai", 2026, 5, 4, 15, 0)
    one = History(attempts=(AttemptRecord(now - timedelta(hours=3), "c1"),), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
    assert cn_decide(one, now).allowed
    first, second = now - timedelta(hours=3), now - timedelta(hours=1)
    two = History(attempts=(AttemptRecord(first, "c1"), AttemptRecord(second, "c2")), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
    capped = cn_decide(two, now)
    assert capped.reason is Reason.frequency_cap and capped.next_allowed_at == first + timedelta(hours=24)
    assert not cn_decide(two, first + timedelta(hours=24) - timedelta(seconds=1)).allowed
    assert cn_decide(two, first + timedelta(hours=24)).allowed
    # 7-day cap of 5: five attempts spread over six days.
    week = tuple(AttemptRecord(now - timedelta(days=d, hours=2), "c1") for d in (6, 5, 4, 3, 2))
    weekly = cn_decide(History(attempts=week, consents=CN_OK.consents, caller_id=CN_OK.caller_id), now)
    assert weekly.reason is Reason.frequency_cap and weekly.next_allowed_at == week[0].at + timedelta(days=7)


def test_per_campaign_and_calendar_day_caps():
    pack = type(US).model_validate({**US.model_dump(), "caps_per_campaign": {"calendar_day": 1}, "caps_per_number": {"rolling_30d": 3}})
    morning = local("America/New_York", 2026, 6, 10, 9, 0)
    history = History(attempts=(AttemptRecord(morning, "a"),))
    later = morning + timedelta(hours=5)
    assert decide(DC_NUMBER, pack, history, later, campaign="b").allowed
    same_campaign = decide(DC_NUMBER, pack, history, later, campaign="a")
    assert same_campaign.reason is Reason.frequency_cap
    assert same_campaign.next_allowed_at == local("America/New_York", 2026, 6, 11, 8, 0)  # midnight, then window
    month = History(attempts=tuple(AttemptRecord(morning - timedelta(days=d), "x") for d in (20, 10, 1)))
    refused = decide(DC_NUMBER, pack, month, later, campaign="b")
    assert refused.reason is Reason.frequency_cap
    assert refused.next_allowed_at == morning - timedelta(days=20) + timedelta(days=30)


def test_refusal_backoff_boundaries_and_blocking():
    refused_at = local("Asia/Shanghai", 2026, 5, 4, 10, 0)
    for refusals, wait in ((1, 24), (2, 48), (3, 96)):
        history = History(state=NumberState(refusals=refusals, last_refusal_at=refused_at), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
        boundary = refused_at + timedelta(hours=wait)
        early = cn_decide(history, boundary - timedelta(seconds=1))
        assert early.reason is Reason.backoff and early.next_allowed_at == boundary
        assert cn_decide(history, boundary).allowed
    blocked = History(state=NumberState(refusals=4, last_refusal_at=refused_at), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
    verdict = cn_decide(blocked, refused_at + timedelta(days=365))
    assert verdict.reason is Reason.refused_too_often and verdict.next_allowed_at is None


def test_permanent_reasons_win_over_temporary_ones():
    night = local("Asia/Shanghai", 2026, 5, 4, 3, 0)
    invalid = History(state=NumberState(invalid=True), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
    verdict = cn_decide(invalid, night)
    assert verdict.reason is Reason.invalid_number and verdict.next_allowed_at is None
    assert cn_decide(History(caller_id=CN_OK.caller_id), night).reason is Reason.no_consent
    unflagged = History(consents=CN_OK.consents, caller_id=CallerIdRecord("+8610123", marketing=False))
    assert cn_decide(unflagged, night).reason is Reason.caller_id_unregistered
    assert cn_decide(History(consents=CN_OK.consents), night).reason is Reason.caller_id_unregistered


def test_dnc_exact_prefix_and_per_campaign():
    at = local("America/New_York", 2026, 6, 10, 12, 0)
    exact = DncEntry("+12025550100", False, "internal")
    prefix = DncEntry("+1202555", True, "national-us")
    mine = DncEntry("+12025550100", False, "campaign", campaign="a")
    assert decide(DC_NUMBER, US, History(dnc=(exact,)), at, campaign="a").reason is Reason.dnc
    assert decide(DC_NUMBER, US, History(dnc=(prefix,)), at, campaign="a").inputs["dnc_list"] == "national-us"
    assert decide(DC_NUMBER, US, History(dnc=(mine,)), at, campaign="b").allowed
    assert decide(DC_NUMBER, US, History(dnc=(mine,)), at, campaign="a").reason is Reason.dnc
    assert decide(DC_NUMBER, US, History(dnc=(DncEntry("+1202556", True, "x"),)), at, campaign="a").allowed


def test_uk_no_repeat_within_72h_of_an_abandoned_call():
    abandoned_at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    history = History(state=NumberState(last_abandon_at=abandoned_at))
    early = decide(LONDON, UK, history, abandoned_at + timedelta(hours=71), campaign="c")
    assert early.reason is Reason.recent_abandon and early.next_allowed_at == abandoned_at + timedelta(hours=72)
    assert decide(LONDON, UK, history, abandoned_at + timedelta(hours=72), campaign="c").allowed


def test_abandon_cap_active_when_one_more_abandon_would_exceed_the_rate():
    assert not abandon_cap_active(US, live_answered=100, abandoned=2)  # 3/101 < 3 %
    assert abandon_cap_active(US, live_answered=100, abandoned=3)  # 4/101 > 3 %
    assert abandon_cap_active(US, live_answered=0, abandoned=0)  # the first abandon would be 100 %
    assert not abandon_cap_active(CN, live_answered=0, abandoned=50)  # cn sets no ceiling


def test_next_allowed_at_combines_window_and_caps():
    # capped until 23:00 local, which is outside the window: next is 08:00 the next morning.
    now = local("Asia/Shanghai", 2026, 5, 4, 20, 0)
    first = local("Asia/Shanghai", 2026, 5, 3, 23, 0)
    history = History(attempts=(AttemptRecord(first, "c1"), AttemptRecord(now - timedelta(hours=1), "c1")), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
    verdict = cn_decide(history, now)
    assert verdict.reason is Reason.frequency_cap and verdict.next_allowed_at == local("Asia/Shanghai", 2026, 5, 5, 8, 0)


instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
numbers = st.sampled_from([CN_NUMBER, DC_NUMBER, MIAMI, TOLL_FREE, LONDON, normalize("+61291234567"), normalize("+15035550100")])
packs = st.sampled_from([CN, US, UK])


@settings(max_examples=300, deadline=None)
@given(number=numbers, pack=packs, at=instants)
def test_property_no_allowed_decision_outside_the_window_in_any_zone(number, pack, at):
    verdict = decide(number, pack, CN_OK, at, campaign="c")
    from compliance.rules import number_rules

    window = number_rules(pack, number.e164).window
    checked = [at] if verdict.allowed else ([verdict.next_allowed_at] if verdict.next_allowed_at else [])
    for instant in checked:
        for zone in number.time_zones:
            clock = instant.astimezone(ZoneInfo(zone)).time()
            assert window.start <= clock < window.end, (zone, instant)
    if verdict.next_allowed_at is not None:
        assert verdict.next_allowed_at > at
        assert decide(number, pack, CN_OK, verdict.next_allowed_at, campaign="c").allowed


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=6 * 3600), st.sampled_from(["a", "b", "c"])),
        min_size=1, max_size=60,
    ),
    per_campaign=st.integers(min_value=0, max_value=3),
)
def test_property_no_cap_exceeded_under_any_interleaving(steps, per_campaign):
    pack = type(CN).model_validate({**CN.model_dump(), "caps_per_campaign": {"rolling_24h": per_campaign}, "calling_window": {"start": "00:00", "end": "23:59:59"}})
    now = datetime(2026, 5, 4, tzinfo=UTC)
    attempts: list[AttemptRecord] = []
    for gap, campaign in steps:
        now += timedelta(seconds=gap)
        history = History(attempts=tuple(attempts), consents=CN_OK.consents, caller_id=CN_OK.caller_id)
        verdict = decide(CN_NUMBER, pack, history, now, campaign=campaign)
        if verdict.allowed:
            attempts.append(AttemptRecord(now, campaign))
    for anchor in attempts:
        day = [a for a in attempts if anchor.at <= a.at < anchor.at + timedelta(hours=24)]
        week = [a for a in attempts if anchor.at <= a.at < anchor.at + timedelta(days=7)]
        assert len(day) <= 2 and len(week) <= 5
        for campaign in "abc":
            assert sum(1 for a in day if a.campaign == campaign) <= per_campaign


def test_reason_codes_are_exactly_the_documented_closed_set():
    assert [r.value for r in Reason] == [
        "ok", "invalid_number", "dnc", "no_consent", "consent_expired", "refused_too_often",
        "outside_calling_window", "holiday", "frequency_cap", "backoff", "recent_abandon", "abandon_cap",
        "caller_id_unregistered",
    ]


@settings(max_examples=200, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    attempt_offsets_min=st.lists(st.integers(min_value=1, max_value=8 * 24 * 60), max_size=7),
    refusals=st.integers(min_value=0, max_value=3),
    refusal_offset_min=st.integers(min_value=0, max_value=5 * 24 * 60),
)
def test_property_next_allowed_at_is_the_first_passing_instant(at, attempt_offsets_min, refusals, refusal_offset_min):
    history = History(
        attempts=tuple(sorted((AttemptRecord(at - timedelta(minutes=m), "c1") for m in attempt_offsets_min), key=lambda a: a.at)),
        state=NumberState(refusals=refusals, last_refusal_at=at - timedelta(minutes=refusal_offset_min) if refusals else None),
        consents=CN_OK.consents,
        caller_id=CN_OK.caller_id,
    )
    verdict = cn_decide(history, at)
    if verdict.allowed:
        return
    assert verdict.next_allowed_at is not None and verdict.next_allowed_at > at
    assert cn_decide(history, verdict.next_allowed_at).allowed
    just_before = verdict.next_allowed_at - timedelta(seconds=1)
    if just_before > at:
        assert not cn_decide(history, just_before).allowed


def test_outcomes_update_number_state():
    from compliance.ledger import next_number_state

    for code in (404, 484, 604):
        assert next_number_state(None, "failed", code, 10)[2] == 10
    assert next_number_state(None, "rejected", 603, 10) is None  # a 603 decline is not a bad number
    assert next_number_state(None, "busy", 486, 10) is None
    assert next_number_state((1, 5, None, None), "refused", None, 20) == (2, 20, None, None)
    assert next_number_state((0, None, 7, None), "invalid", None, 30) == (0, None, 7, None)  # first mark kept
    assert next_number_state(None, "abandoned", None, 40) == (0, None, None, 40)
