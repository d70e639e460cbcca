import json

from dialer.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_json_window_edge_and_consent(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T20:59:59+08:00", "--db", db, "--json")
    assert code == 0 and json.loads(out) == {"allowed": False, "reason": "no_consent", "next_allowed_at": None}
    assert run(capsys, "consent", "add", "--number", "+8613812348000", "--granted-at", "2026-01-01T00:00Z", "--channel", "web", "--db", db)[0] == 0
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T20:59:59+08:00", "--db", db, "--json")
    assert json.loads(out)["allowed"] is True
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T21:00:00+08:00", "--db", db, "--json")
    assert json.loads(out) == {"allowed": False, "reason": "outside_calling_window", "next_allowed_at": "2026-05-05T00:00:00+00:00"}
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T12:00:00+08:00", "--db", db, "--caller-id", "+861012345678", "--json")
    assert json.loads(out)["reason"] == "caller_id_unregistered"
    assert run(capsys, "callerid", "add", "--number", "+861012345678", "--marketing", "--db", db)[0] == 0
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T12:00:00+08:00", "--db", db, "--caller-id", "+861012345678", "--json")
    assert json.loads(out)["allowed"] is True


def test_bad_input_exits_2_with_clear_errors(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    code, _, err = run(capsys, "check", "--pack", "fr", "--number", "+8613812348000", "--at", "2026-05-04T12:00:00Z", "--db", db)
    assert code == 2 and "unknown rule pack 'fr'" in err and "cn, uk, us" in err
    code, _, err = run(capsys, "check", "--pack", "us", "--number", "not-a-number", "--at", "2026-05-04T12:00:00Z", "--db", db)
    assert code == 2 and "--number" in err
    code, _, err = run(capsys, "check", "--pack", "us", "--number", "+12025550100", "--at", "2026-05-04 12:00", "--db", db)
    assert code == 2 and "no UTC offset" in err


def test_attempts_add_feeds_the_caps_and_invalid_marks(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    for hour in ("10", "11", "12"):
        assert run(capsys, "attempts", "add", "--number", "+12025550100", "--at", f"2026-06-10T{hour}:00:00-04:00", "--outcome", "no_answer", "--db", db)[0] == 0
    code, out, _ = run(capsys, "check", "--pack", "us", "--number", "+12025550100", "--at", "2026-06-10T13:00:00-04:00", "--db", db, "--json")
    assert json.loads(out) == {"allowed": False, "reason": "frequency_cap", "next_allowed_at": "2026-06-11T14:00:00+00:00"}
    run(capsys, "attempts", "add", "--number", "+12025550111", "--at", "2026-06-10T10:00:00-04:00", "--outcome", "failed", "--sip-code", "484", "--db", db)
    code, out, _ = run(capsys, "check", "--pack", "us", "--number", "+12025550111", "--at", "2026-06-12T13:00:00-04:00", "--db", db, "--json")
    assert json.loads(out)["reason"] == "invalid_number"


def test_dnc_import_reports_bad_lines_and_keeps_good_ones(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    csv_file = tmp_path / "national.csv"
    csv_file.write_text("number\n+12025550100\nhello\n+1303555*\n+1*\n+442079460000\n")
    code, out, err = run(capsys, "dnc", "import", str(csv_file), "--list", "national-us", "--db", db)
    assert code == 2 and "line 3" in err and "line 5" in err and "3 valid lines (3 new)" in out
    code, out, _ = run(capsys, "check", "--pack", "us", "--number", "+13035550100", "--at", "2026-06-10T12:00:00-06:00", "--db", db, "--json")
    assert json.loads(out)["reason"] == "dnc"
    assert run(capsys, "dnc", "remove", "--number", "+1303555*", "--list", "national-us", "--db", db)[0] == 0
    code, out, _ = run(capsys, "check", "--pack", "us", "--number", "+13035550100", "--at", "2026-06-10T12:00:00-06:00", "--db", db, "--json")
    assert json.loads(out)["allowed"] is True
    assert run(capsys, "dnc", "add", "--number", "+13035550100", "--campaign", "x", "--db", db)[0] == 0
    code, out, _ = run(capsys, "check", "--pack", "us", "--number", "+13035550100", "--at", "2026-06-10T12:00:00-06:00", "--campaign", "x", "--db", db, "--json")
    assert json.loads(out)["reason"] == "dnc"


def test_consent_import_and_revoke(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    csv_file = tmp_path / "consents.csv"
    csv_file.write_text(
        "number,granted_at,channel,expires_at\n"
        "+8613812348000,2026-01-01T00:00Z,web,2026-05-04T14:00:00+08:00\n"
        "+8613812348001,yesterday,web,\n"
        "+8613812348002,2026-01-01T00:00Z,,\n"
    )
    code, out, err = run(capsys, "consent", "import", str(csv_file), "--db", db)
    assert code == 2 and "line 3: granted_at" in err and "line 4: channel" in err and "1 valid lines" in out
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T14:00:00+08:00", "--db", db, "--json")
    assert json.loads(out)["reason"] == "consent_expired"
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T13:59:59+08:00", "--db", db, "--json")
    assert json.loads(out)["allowed"] is True
    assert run(capsys, "consent", "revoke", "--number", "+8613812348000", "--at", "2026-05-01T00:00Z", "--db", db)[0] == 0
    code, out, _ = run(capsys, "check", "--pack", "cn", "--number", "+8613812348000", "--at", "2026-05-04T13:00:00+08:00", "--db", db, "--json")
    assert json.loads(out)["reason"] == "no_consent"


def test_audit_verify_and_export_detect_tampering(tmp_path, capsys):
    import sqlite3

    db = str(tmp_path / "cli.db")
    for hour in ("10", "11"):
        run(capsys, "attempts", "add", "--number", "+12025550100", "--at", f"2026-06-10T{hour}:00:00-04:00", "--outcome", "answered", "--db", db)
    code, out, _ = run(capsys, "audit", "verify", "--db", db)
    assert code == 0 and "intact: 2 rows" in out
    code, out, _ = run(capsys, "audit", "export", "--db", db)
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2 and rows[0]["kind"] == "import" and rows[1]["prev_hash"] == rows[0]["hash"]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET reason = 'refused' WHERE seq = 1")
    code, out, _ = run(capsys, "audit", "verify", "--db", db)
    assert code == 1 and "row edited" in out and "TAMPERED" in out
