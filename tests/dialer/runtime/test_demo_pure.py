"""Pure parts of the demo and the runtime: the lead list, the tally behind occupancy, event mapping."""

from __future__ import annotations

import io

from compliance.numbers import normalize
from dialer.core import events as ev
from dialer.demo.leads import INVALID_ROW, REGIONS, demo_lead_csv
from dialer.leads_csv import RowError, iter_leads
from dialer.runtime.calls import core_event
from dialer.runtime.tally import RuntimeTally
from sip import switch


def test_demo_leads_cover_every_region_with_distinct_valid_numbers_and_one_bad_row() -> None:
    rows = list(iter_leads(io.StringIO(demo_lead_csv(10, seed=4))))
    errors = [r for r in rows if isinstance(r, RowError)]
    leads = [r for r in rows if not isinstance(r, RowError)]
    assert len(errors) == 1 and errors[0].line == 7 and errors[0].column == "number"
    assert len(leads) == 10 * len(REGIONS) and len({lead.e164 for lead in leads}) == len(leads)
    assert {lead.fields["region"] for lead in leads} == {label for label, _ in REGIONS}
    zones = {zone for lead in leads for zone in normalize(lead.e164).time_zones}
    assert len(zones) >= 7  # spread over time zones, so some are always outside 08:00-21:00
    assert INVALID_ROW not in {lead.raw_number for lead in leads}
    assert demo_lead_csv(10, seed=4) == demo_lead_csv(10, seed=4)


def test_tally_occupancy_counts_busy_over_working_time_including_current_states() -> None:
    tally = RuntimeTally()
    tally.apply(ev.AgentStateChanged("a", "connecting", "ready", 0.5), now=0.0)
    tally.apply(ev.AgentStateChanged("a", "ready", "talking", 10.0), now=10.0)
    tally.apply(ev.AgentStateChanged("a", "talking", "wrap_up", 20.0), now=30.0)
    tally.apply(ev.LeadRefused("c", 1, "dnc", None), now=30.0)
    occupancy, talking_s, working_s = tally.occupancy(now=35.0)  # 5 s into wrap-up
    assert (talking_s, working_s) == (20.0, 35.0)
    assert occupancy == 25.0 / 35.0
    assert tally.gate_refusals == {"dnc": 1}


def test_switch_events_map_to_core_events() -> None:
    assert core_event("c-1", switch.EarlyMedia("sip-x")) == ev.Ringing("c-1")
    assert core_event("c-1", switch.Answered("sip-x")) == ev.Answered("c-1")
    assert core_event("c-1", switch.Failed("sip-x", 486, "busy")) == ev.Failed("c-1", 486, "busy")
    assert core_event("c-1", switch.Failed("sip-x", 302, "weird")) == ev.Failed("c-1", 302, "failed")
    assert core_event("c-1", switch.Ended("sip-x", "remote", "bye")) == ev.Ended("c-1", "remote", "bye")
