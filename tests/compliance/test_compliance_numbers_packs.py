from pathlib import Path

import pytest

from compliance.numbers import InvalidNumber, mask_number, normalize
from pydantic import ValidationError

from compliance.packs import Caps, CallingWindow, PackError, UnknownPack, known_packs, load_pack
from compliance.reasons import PERMANENT, Reason, winning_reason
from compliance.settings import CampaignCompliance, LooseningError, effective_rules


def test_normalize_gives_e164_region_and_zones():
    parsed = normalize("+86 138 1234 8000")
    assert parsed.e164 == "+8613812348000" and parsed.region == "CN" and parsed.time_zones == ("Asia/Shanghai",)
    assert normalize("(305) 555-0123", "US").e164 == "+13055550123"
    assert len(normalize("+18005550100").time_zones) > 5  # toll-free spans every NANP zone


@pytest.mark.parametrize("raw", ["", "hello", "+1202", "+999123456789", "12345"])
def test_unparseable_or_invalid_numbers_raise_with_reason(raw):
    with pytest.raises(InvalidNumber) as err:
        normalize(raw)
    assert err.value.reason


def test_mask_hides_the_middle_digits():
    assert mask_number("+8613812348000") == "+86138****8000"
    assert mask_number("+12025550100") == "+12025****0100"
    assert "5550" not in mask_number("+1 (202) 555-0100")


def test_reason_precedence_puts_permanent_first_in_documented_order():
    assert [r.value for r in Reason][:2] == ["ok", "invalid_number"]
    assert winning_reason([Reason.frequency_cap, Reason.consent_expired, Reason.dnc]) is Reason.dnc
    assert winning_reason([Reason.backoff, Reason.outside_calling_window]) is Reason.outside_calling_window
    assert winning_reason([Reason.outside_calling_window, Reason.caller_id_unregistered]) is Reason.caller_id_unregistered
    assert winning_reason([]) is Reason.ok
    assert Reason.frequency_cap not in PERMANENT


def test_shipped_packs_load_with_the_issue_defaults():
    assert known_packs() == ["cn", "uk", "us"]
    cn, us, uk = load_pack("cn"), load_pack("us"), load_pack("uk")
    assert (cn.caps_per_number.rolling_24h, cn.caps_per_number.rolling_7d) == (2, 5)
    assert cn.consent.required and cn.caller_id.marketing_flag_required and cn.refusals.block_after == 3
    assert cn.recording_retention_days >= 182
    florida = us.regional[0]
    assert "+1305" in florida.prefixes and len(florida.prefixes) == 20 and str(florida.calling_window.end) == "20:00:00"
    assert us.abandon.max_rate == 0.03 and us.abandon.window_s == 30 * 86400 and not us.consent.required
    assert uk.abandon.recent_abandon_block_s == 72 * 3600 and uk.min_ring_s == 15 and uk.abandon.window_s == 86400


def test_unknown_pack_lists_known_ones():
    with pytest.raises(UnknownPack, match="unknown rule pack 'fr'.*cn, uk, us"):
        load_pack("fr")


def test_broken_pack_names_file_and_key(tmp_path: Path):
    (tmp_path / "xx.yaml").write_text("name: xx\nversion: '1'\ncalling_window: {start: '21:00', end: '08:00'}\n")
    with pytest.raises(PackError, match=r"xx.yaml: calling_window: .*before end"):
        load_pack("xx", tmp_path)
    (tmp_path / "yy.yaml").write_text("name: yy\nversion: '1'\ncalling_window: {start: '08:00', end: '21:00'}\nbogus: 1\n")
    with pytest.raises(PackError, match="bogus"):
        load_pack("yy", tmp_path)


def test_campaign_tightening_applies_and_loosening_is_refused():
    us = load_pack("us")
    tight = effective_rules(
        us,
        CampaignCompliance(
            rule_pack="us", calling_window={"start": "09:00", "end": "20:30"}, caps_per_number={"rolling_24h": 2},
            consent_required=True, max_abandon_rate=0.02,
        ),
    )
    assert str(tight.calling_window.start) == "09:00:00" and tight.caps_per_number.rolling_24h == 2
    assert str(tight.regional[0].calling_window.end) == "20:00:00" and str(tight.regional[0].calling_window.start) == "09:00:00"
    assert tight.consent.required and tight.abandon.max_rate == 0.02
    loose = CampaignCompliance.model_construct(
        rule_pack="us", calling_window=CallingWindow(start="07:00", end="21:00"), caps_per_number=Caps(rolling_24h=4),
        max_abandon_rate=0.05,
    )
    with pytest.raises(LooseningError) as err:
        effective_rules(us, loose)
    message = str(err.value)
    assert "calling_window" in message and "rolling_24h 4" in message and "max_abandon_rate 0.05" in message
    with pytest.raises(ValidationError, match="consent_required"):
        CampaignCompliance(rule_pack="cn", consent_required=False)
    with pytest.raises(ValidationError, match="refusal_block_after"):
        CampaignCompliance(rule_pack="cn", refusal_block_after=5)


def test_config_check_reports_a_loosening_campaign_and_an_unknown_pack_with_the_key_path(tmp_path):
    from dialer.config import ConfigError, load_config

    bad = tmp_path / "loose.yaml"
    bad.write_text(
        "api:\n  token: abcdefghijklmnopqrstuvwxyz\n"
        "trunks:\n  - name: t\n    host: 127.0.0.1\n"
        "campaigns:\n  - name: c1\n    caller_id: '+12025550100'\n    trunks: [t]\n"
        "    compliance:\n      rule_pack: us\n      caps_per_number: {rolling_24h: 9}\n"
        "  - name: c2\n    caller_id: '+12025550100'\n    trunks: [t]\n"
        "    compliance: {rule_pack: fr}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    message = str(err.value)
    assert "campaigns.0.compliance" in message and "rolling_24h 9 is looser" in message
    assert "campaigns.1.compliance" in message and "unknown rule pack 'fr'" in message


def test_campaign_context_from_the_dialer_config_section():
    from compliance.gate import CampaignContext
    from dialer.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "config" / "demo.yaml")
    campaign = config.campaigns[0]
    context = CampaignContext.from_settings(campaign.name, campaign.caller_id, campaign.compliance)
    assert context.rules.name == "us" and context.caller_id == "+12025550100"
    loose = CampaignCompliance.model_construct(rule_pack="us", caps_per_number=Caps(rolling_24h=9))
    with pytest.raises(LooseningError):
        CampaignContext.from_settings("x", "+12025550100", loose)
    with pytest.raises(UnknownPack):
        CampaignContext.from_settings("x", "+12025550100", CampaignCompliance.model_construct(rule_pack="zz"))


def test_campaign_timing_against_the_pack():
    from compliance.settings import campaign_timing_problems

    assert campaign_timing_problems(load_pack("uk"), ring_timeout_s=15, connect_limit_s=2) == []
    assert "min_ring_s 15" in campaign_timing_problems(load_pack("uk"), ring_timeout_s=14.9, connect_limit_s=2)[0]
    assert "connect_limit_s 2" in campaign_timing_problems(load_pack("us"), ring_timeout_s=25, connect_limit_s=2.5)[0]
    assert campaign_timing_problems(load_pack("cn"), ring_timeout_s=5, connect_limit_s=9) == []


def test_config_check_reports_a_uk_campaign_that_gives_up_ringing_too_soon(tmp_path):
    from dialer.config import ConfigError, load_config

    bad = tmp_path / "short_ring.yaml"
    bad.write_text(
        "api:\n  token: abcdefghijklmnopqrstuvwxyz\n"
        "trunks:\n  - name: t\n    host: 127.0.0.1\n"
        "campaigns:\n  - name: c1\n    caller_id: '+442079460001'\n    trunks: [t]\n    ring_timeout_s: 10\n"
        "    compliance: {rule_pack: uk}\n"
    )
    with pytest.raises(ConfigError, match=r"campaigns\.0.*ring_timeout_s 10.0 is shorter than pack 'uk'"):
        load_config(bad)
