"""`dialer cdr export`: every CDR column, filters, CSV and JSON, stdout or a file, and no phone numbers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from dialer.cli import main
from dialer.storage import NewLead, open_store
from dialer.storage.models import CDR_COLUMNS

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


async def populate(dsn: str) -> None:
    store = await open_store(dsn, node="n1")
    try:
        await store.add_leads("spring", [NewLead(e164="+12025550100", raw_number="(202) 555-0100")], T0)
        [lead] = await store.claim_leads("spring", T0, 1)
        await store.open_cdr("call-a", "spring", lead.id, "t1", T0)
        await store.update_cdr("call-a", answered_at=T0 + timedelta(seconds=4), bridged_at=T0 + timedelta(seconds=5),
                               agent_id="alice", recording_path="var/recordings/call-a.wav")
        await store.close_cdr("call-a", T0 + timedelta(seconds=65), "answered", sip_code=200, hangup_by="remote")
        await store.open_cdr("call-b", "autumn", None, "t2", T0 + timedelta(hours=1))
        await store.close_cdr("call-b", T0 + timedelta(hours=1, seconds=20), "busy", sip_code=486, hangup_by="remote")
        await store.open_cdr("call-c", "spring", lead.id, "t1", T0 + timedelta(hours=2))
        await store.close_cdr("call-c", T0 + timedelta(hours=2, seconds=9), "answered", sip_code=200,
                              abandoned=True, hangup_by="local")
    finally:
        await store.close()


@pytest.fixture
def db(tmp_path) -> str:
    dsn = f"sqlite:///{tmp_path / 'cdr.db'}"
    asyncio.run(populate(dsn))
    return dsn


def export(capsys, *args: str) -> str:
    assert main(["cdr", "export", *args]) == 0
    return capsys.readouterr().out


def test_csv_export_has_every_column_in_start_order(db, capsys):
    rows = list(csv.DictReader(io.StringIO(export(capsys, "--format", "csv", "--db", db))))
    assert [row["call_id"] for row in rows] == ["call-a", "call-b", "call-c"]
    assert tuple(rows[0]) == CDR_COLUMNS
    first = rows[0]
    assert (first["started_at"], first["answered_at"], first["bridged_at"], first["ended_at"]) == (
        "2026-03-02T09:00:00+00:00", "2026-03-02T09:00:04+00:00", "2026-03-02T09:00:05+00:00",
        "2026-03-02T09:01:05+00:00")
    assert (first["outcome"], first["sip_code"], first["agent_id"], first["trunk"], first["node"]) == (
        "answered", "200", "alice", "t1", "n1")
    assert (first["abandoned"], rows[2]["abandoned"], rows[1]["lead_id"]) == ("False", "True", "")


def test_json_export_with_filters(db, capsys):
    records = json.loads(export(capsys, "--format", "json", "--db", db, "--campaign", "spring",
                                "--since", "2026-03-02T10:30:00Z"))
    assert [r["call_id"] for r in records] == ["call-c"]
    assert (records[0]["abandoned"], records[0]["sip_code"], records[0]["hangup_by"]) == (True, 200, "local")
    naive_since = json.loads(export(capsys, "--format", "json", "--db", db, "--since", "2026-03-02T10:00:00"))
    assert [r["call_id"] for r in naive_since] == ["call-b", "call-c"]
    assert json.loads(export(capsys, "--format", "json", "--db", db, "--campaign", "nobody")) == []


def test_exports_carry_no_phone_numbers(db, capsys):
    for format in ("csv", "json"):
        output = export(capsys, "--format", format, "--db", db)
        assert "2025550100" not in output and "555-0100" not in output


def test_output_file(db, tmp_path, capsys):
    target = tmp_path / "out" / "cdrs.json"
    target.parent.mkdir()
    assert main(["cdr", "export", "--format", "json", "--db", db, "--output", str(target)]) == 0
    assert "3 CDRs written" in capsys.readouterr().err
    assert len(json.loads(target.read_text())) == 3
    assert [p.name for p in target.parent.iterdir()] == ["cdrs.json"]


def test_bad_since_is_a_clear_error(db, capsys):
    assert main(["cdr", "export", "--format", "csv", "--db", db, "--since", "yesterday"]) == 2
    assert "--since: 'yesterday' is not an ISO 8601 time" in capsys.readouterr().err


def test_unreachable_database_and_bad_output_are_clear_errors(db, tmp_path, capsys):
    assert main(["cdr", "export", "--format", "csv", "--db", "postgresql://u:secret@127.0.0.1:1/x"]) == 2
    error = capsys.readouterr().err
    assert "database postgresql://u:***@127.0.0.1:1/x:" in error and "secret" not in error
    assert main(["cdr", "export", "--format", "csv", "--db", db, "--output", str(tmp_path / "no" / "dir.csv")]) == 2
    assert "--output:" in capsys.readouterr().err
