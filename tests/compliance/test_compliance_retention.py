import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from compliance.packs import load_pack
from compliance.retention import Recording, RetentionError, keep_days, recordings_to_delete
from dialer.cli import main

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_keep_days_never_goes_below_the_pack_minimum():
    cn = load_pack("cn")
    assert keep_days(cn, None) == cn.recording_retention_days
    assert keep_days(cn, 400) == 400
    with pytest.raises(RetentionError, match="below"):
        keep_days(cn, 30)
    with pytest.raises(RetentionError, match="no minimum"):
        keep_days(load_pack("us"), None)


def test_only_recordings_older_than_the_retention_are_chosen():
    old = Recording("a.wav", NOW - timedelta(days=184))
    edge = Recording("b.wav", NOW - timedelta(days=183))
    young = Recording("c.wav", NOW - timedelta(days=10))
    assert recordings_to_delete([young, edge, old], 183, NOW) == [old]


def test_purge_command_dry_run_then_delete(tmp_path, capsys):
    old, young = tmp_path / "old.wav", tmp_path / "young.wav"
    for path in (old, young):
        path.write_bytes(b"RIFF")
    ancient = time.time() - 200 * 86400
    os.utime(old, (ancient, ancient))
    assert main(["recordings", "purge", "--dir", str(tmp_path), "--pack", "cn", "--dry-run"]) == 0
    assert "would delete" in capsys.readouterr().out and old.exists()
    assert main(["recordings", "purge", "--dir", str(tmp_path), "--pack", "cn", "--keep-days", "10"]) == 2
    assert main(["recordings", "purge", "--dir", str(tmp_path), "--pack", "cn"]) == 0
    assert not old.exists() and young.exists()
