"""Lead CSV parsing and `dialer leads import`: numbers normalised, bad rows reported by line, good rows kept,
re-import does not duplicate, nothing stored is lost."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import dialer.leads_csv
from dialer.cli import main
from dialer.leads_csv import InvalidNumber, LeadFileError, RowError, iter_leads, normalize_number
from dialer.storage import Store, open_store


def test_normalize_gives_e164_region_and_time_zones():
    parsed = normalize_number(" +86 138 0013 8000 ")
    assert (parsed.e164, parsed.region, parsed.time_zones) == ("+8613800138000", "CN", ("Asia/Shanghai",))
    assert normalize_number("(202) 555-0100", "US").e164 == "+12025550100"
    assert normalize_number("020 7946 0958", "GB").time_zones == ("Europe/London",)


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", None, "empty"),
        ("   ", "US", "empty"),
        ("call me", "US", "cannot parse phone number"),
        ("2025550100", None, "invalid default region. Write it as \\+CC... or pass --default-region"),
        ("+1202555010", None, "not a valid phone number"),
        ("+86138001380001234", None, "not a valid phone number"),
        ("+861380013800", None, "not a valid phone number"),
    ],
)
def test_normalize_refuses_with_a_reason_and_a_masked_number(raw, region, reason):
    with pytest.raises(InvalidNumber, match=reason) as refused:
        normalize_number(raw, region)
    assert not any(digits in str(refused.value) for digits in ("5550100", "555010", "00138", "0013800"))


def rows(text: str, region: str | None = None) -> list:
    return list(iter_leads(io.StringIO(text, newline=""), region))


def test_rows_become_leads_with_fields_and_priority():
    [lead] = rows("Number,Name,Priority,Agent Note\n+8613800138000,Li,3,\"calls after 6, weekdays\"\n")
    assert (lead.e164, lead.raw_number, lead.priority) == ("+8613800138000", "+8613800138000", 3)
    assert lead.fields == {"name": "Li", "agent note": "calls after 6, weekdays"}
    assert lead.time_zones == ("Asia/Shanghai",)


def test_each_bad_row_is_reported_by_line_and_column():
    text = (
        "number,name,priority\n"        # 1
        "+12025550100,Ann,1\n"          # 2 good
        "\n"                            # 3 blank: skipped silently
        "abc,Carl,\n"                   # 4
        ",Empty,\n"                     # 5
        "+12025550101,Bob,high\n"       # 6
        "+12025550102,Too,many,cols\n"  # 7
        "\"+1 202 555\n0103\",Multi,\n"  # 8-9: a quoted field spanning lines, reported at its first line
        "+12025550104\n"                # 10
        "+12025550105,Eve,2\n"          # 11 good
    )
    result = rows(text)
    errors = [str(item) for item in result if isinstance(item, RowError)]
    assert errors == [
        "line 4: number: cannot parse phone number '****': The string supplied did not seem to be a phone number.",
        "line 5: number: empty phone number",
        "line 6: priority: not an integer",
        "line 7: row: expected 3 columns as in the header, found 4",
        "line 8: number: cannot parse phone number '+12025****0103': The string supplied did not seem to be a phone number.",
        "line 10: row: expected 3 columns as in the header, found 1",
    ]
    assert [lead.e164 for lead in result if not isinstance(lead, RowError)] == ["+12025550100", "+12025550105"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: header: the file is empty"),
        ("phone,name\n+12025550100,Ann\n", "line 1: header: no 'number' column (found: phone, name)"),
        ("number,name,Name\n", "column 'name' appears twice"),
        ("number,,x\n", "a column has no name"),
    ],
)
def test_unusable_header_is_a_file_error(text, message):
    with pytest.raises(LeadFileError, match=message.replace("(", "\\(").replace(")", "\\)")):
        rows(text)


# --- the command, on a real database ---------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'leads.db'}"


async def with_store(dsn: str, action):
    store: Store = await open_store(dsn)
    try:
        return await action(store)
    finally:
        await store.close()


def stored(dsn: str, campaign: str = "spring") -> dict[str, object]:
    async def read(store: Store):
        return {lead.e164: lead for lead in await store.list_leads(campaign)}
    return asyncio.run(with_store(dsn, read))


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


GOOD = b"number,name\n+12025550100,Ann\n+8613800138000,Li\n+442079460958,Jo\n"


def test_import_stores_leads_and_reimport_does_not_duplicate(tmp_path, db, capsys):
    path = write(tmp_path, "leads.csv", GOOD)
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db]) == 0
    assert capsys.readouterr().out.strip().endswith("imported 3, duplicates 0, rejected 0")
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db]) == 0
    assert capsys.readouterr().out.strip().endswith("imported 0, duplicates 3, rejected 0")
    leads = stored(db)
    assert sorted(leads) == ["+12025550100", "+442079460958", "+8613800138000"]
    assert leads["+442079460958"].time_zones == ("Europe/London",)
    assert leads["+442079460958"].fields == {"name": "Jo"}


def test_bad_rows_are_reported_good_rows_kept_and_stored_leads_untouched(tmp_path, db, capsys):
    assert main(["leads", "import", write(tmp_path, "first.csv", GOOD), "--campaign", "spring", "--db", db]) == 0

    async def dial_one(store: Store):
        [lead] = await store.claim_leads("spring", datetime.now(timezone.utc) + timedelta(seconds=1), 1)
        await store.schedule_lead(lead.id, datetime(2030, 1, 1, tzinfo=timezone.utc), attempted=True)
        return lead.e164
    dialled = asyncio.run(with_store(db, dial_one))
    capsys.readouterr()

    broken = (
        b"number,name\n"
        b"+12025550100,Ann again\n"      # 2 duplicate of a stored lead: must not reset it
        b"+12025550199,New\n"            # 3 good
        b"+1202555,Short\n"              # 4 too short
        b"+12025550198,Caf\xe9\n"        # 5 Latin-1 byte, not UTF-8
        b"\xff\xfe,x\n"                  # 6 garbage number bytes
        b"+12025550197,A,B\n"            # 7 wrong column count
        b",Nobody\n"                     # 8 empty number
        b"+12025550196,Last\n"           # 9 good
    )
    code = main(["leads", "import", write(tmp_path, "broken.csv", broken), "--campaign", "spring", "--db", db])
    captured = capsys.readouterr()
    assert code == 1
    assert [line.split(": ", 1)[1] for line in captured.err.splitlines()] == [
        "line 4: number: not a valid phone number: '+120****2555'",
        "line 5: name: not valid UTF-8 text",
        "line 6: number: not valid UTF-8 text",
        "line 7: row: expected 2 columns as in the header, found 3",
        "line 8: number: empty phone number",
    ]
    assert captured.out.strip().endswith("imported 2, duplicates 1, rejected 5")
    leads = stored(db)
    assert sorted(leads) == sorted(["+12025550100", "+442079460958", "+8613800138000", "+12025550199",
                                    "+12025550196"])
    assert (leads[dialled].status, leads[dialled].attempts) == ("scheduled", 1)
    assert leads["+12025550100"].fields == {"name": "Ann"}


def test_large_import_goes_in_batches_and_counts_duplicates_inside_the_file(tmp_path, db, capsys, monkeypatch):
    monkeypatch.setattr(dialer.leads_csv, "IMPORT_BATCH_ROWS", 7)
    body = "".join(f"+1202555{index:04d},n{index}\n" for index in range(50))
    path = write(tmp_path, "big.csv", ("number,name\n" + body + "+12025550003,again\n").encode())
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db]) == 0
    assert capsys.readouterr().out.strip().endswith("imported 50, duplicates 1, rejected 0")
    assert len(stored(db)) == 50


def test_utf8_bom_and_non_ascii_fields_are_read(tmp_path, db):
    path = write(tmp_path, "bom.csv", "\ufeffnumber,name\n+8613800138000,李雷\n".encode())
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db]) == 0
    assert stored(db)["+8613800138000"].fields == {"name": "李雷"}


def test_header_problems_and_missing_files_exit_2_and_store_nothing(tmp_path, db, capsys):
    path = write(tmp_path, "phones.csv", b"phone,name\n+12025550100,Ann\n")
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db]) == 2
    assert "line 1: header: no 'number' column (found: phone, name)" in capsys.readouterr().err
    assert stored(db) == {}
    assert main(["leads", "import", str(tmp_path / "missing.csv"), "--campaign", "spring", "--db", db]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_default_region_option_and_its_validation(tmp_path, db, capsys):
    path = write(tmp_path, "national.csv", b"number\n(202) 555-0100\n")
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db, "--default-region", "us"]) == 0
    assert list(stored(db)) == ["+12025550100"]
    assert main(["leads", "import", path, "--campaign", "spring", "--db", db, "--default-region", "XX"]) == 2
    assert "--default-region: 'XX'" in capsys.readouterr().err
    assert main(["leads", "import", path, "--campaign", "bad name", "--db", db]) == 2
    assert "--campaign: 'bad name'" in capsys.readouterr().err


def test_config_supplies_database_campaigns_and_the_default_region(tmp_path, capsys):
    database = tmp_path / "from-config.db"
    config = tmp_path / "dialer.yaml"
    config.write_text(
        f"node: {{database: 'sqlite:///{database}'}}\n"
        "api: {token: a-token-of-sixteen-chars}\n"
        "trunks: [{name: t1, host: 127.0.0.1}]\n"
        "campaigns: [{name: spring, caller_id: '+442079460000', trunks: [t1]}]\n"
    )
    path = write(tmp_path, "national.csv", b"number\n020 7946 0958\n")
    assert main(["leads", "import", path, "--campaign", "spring", "--config", str(config)]) == 0, capsys.readouterr()
    assert list(stored(f"sqlite:///{database}")) == ["+442079460958"]
    assert main(["leads", "import", path, "--campaign", "autumn", "--config", str(config)]) == 2
    assert "'autumn' is not in" in capsys.readouterr().err
    assert main(["leads", "status", "--campaign", "spring", "--config", str(config)]) == 0
    assert "new 1, scheduled 0" in capsys.readouterr().out


def test_unusable_database_is_a_clear_error(tmp_path, capsys):
    path = write(tmp_path, "leads.csv", GOOD)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["leads", "import", path, "--campaign", "spring", "--db", f"sqlite:///{blocker}/x.db"]) == 2
    assert f"database sqlite:///{blocker}/x.db:" in capsys.readouterr().err


def test_crlf_nul_and_oversized_fields(tmp_path, db, capsys):
    oversized = b"x" * (csv.field_size_limit() + 10)
    content = (
        b"number,name\r\n"
        b"+12025550100,Ann\r\n"           # 2 good, CRLF line ends
        b"+1202555\x000101,Nul\r\n"       # 3 a NUL inside the number
        b"+12025550102,\"" + oversized + b"\"\r\n"  # 4 a field over the csv module's limit
        b"+12025550103,Dan\r\n"           # 5 good after the oversized row
    )
    code = main(["leads", "import", write(tmp_path, "odd.csv", content), "--campaign", "spring", "--db", db])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line.split(": ", 1)[1] for line in captured.err.splitlines()]
    assert errors[0].startswith("line 3: number: cannot parse phone number")
    assert errors[1].startswith("line 4: row: unreadable CSV: field larger than field limit")
    assert sorted(stored(db)) == ["+12025550100", "+12025550103"]


def test_list_shows_leads_with_masked_numbers(tmp_path, db, capsys):
    assert main(["leads", "import", write(tmp_path, "leads.csv", GOOD), "--campaign", "spring", "--db", db]) == 0
    capsys.readouterr()
    assert main(["leads", "list", "--campaign", "spring", "--db", db, "--status", "new", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "number", "status"]
    assert [line.split("\t")[1:3] for line in lines[1:]] == [["+12025****0100", "new"], ["+86138****8000", "new"]]
    assert "2025550100" not in "".join(lines)
