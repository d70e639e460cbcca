"""Property: whatever mix of good and bad rows a file holds, every bad row is reported at its own first line,
and every good row (and only those) becomes a lead, in file order."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.leads_csv import RowError, iter_leads

GOOD_NUMBERS = ["+12025550100", "+8613800138000", "+442079460958", "+33142685300", "+4930901820"]
BAD_NUMBERS = ["", "abc", "+1202", "++", "12345678901234567890123"]

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=12)
good_row = st.tuples(st.just("good"), st.sampled_from(GOOD_NUMBERS), names)
bad_number_row = st.tuples(st.just("bad"), st.sampled_from(BAD_NUMBERS), names)
short_row = st.tuples(st.just("short"), st.sampled_from(GOOD_NUMBERS), st.just(""))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(good_row, bad_number_row, short_row), max_size=25))
def test_bad_rows_reported_at_their_line_and_good_rows_kept(rows):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "name"])
    line = 2
    expected_errors, expected_good = [], []
    for kind, number, name in rows:
        values = [number] if kind == "short" else [number, name]
        if kind == "short" and not number.strip():
            values = [number, ""]
        writer.writerow(values)
        if kind == "good":
            expected_good.append((number, name))
        elif not "".join(values).strip():
            pass  # an all-blank row is skipped, not reported
        else:
            expected_errors.append(line)
        line += 1 + sum(value.count("\n") for value in values)
    buffer.seek(0)

    parsed = list(iter_leads(buffer))
    assert [error.line for error in parsed if isinstance(error, RowError)] == expected_errors
    assert [(lead.e164, lead.fields["name"]) for lead in parsed if not isinstance(lead, RowError)] == expected_good
