from pathlib import Path

import pytest

from dialer.cli import main
from dialer.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent


def test_demo_config_loads():
    config = load_config(REPO / "config" / "demo.yaml")
    assert config.campaigns[0].name == "demo"
    assert config.campaigns[0].connect_limit_s == 2


def test_broken_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("api:\n  token: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    message = str(err.value)
    assert str(bad) in message and "line" in message and "invalid YAML" in message


def test_wrong_type_names_key_path_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "api:\n  token: abcdefghijklmnopqrstuvwxyz\n"
        "campaigns:\n  - name: c1\n    caller_id: '+12025550100'\n    trunks: [t]\n"
        "    pacing:\n      target_abandon_rate: lots\n"
        "trunks:\n  - name: t\n    host: 127.0.0.1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    message = str(err.value)
    assert "campaigns.0.pacing.target_abandon_rate" in message
    assert "line 8" in message and "'lots'" in message


def test_unknown_key_and_missing_token_are_reported_together(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("api: {}\nnode:\n  nmae: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "api.token: Field required" in str(err.value)
    assert "node.nmae" in str(err.value)


def test_unknown_trunk_reference_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "api:\n  token: abcdefghijklmnopqrstuvwxyz\n"
        "campaigns:\n  - name: c1\n    caller_id: '+12025550100'\n    trunks: [nope]\n"
    )
    with pytest.raises(ConfigError, match="unknown trunk 'nope'"):
        load_config(bad)


def test_config_check_command(tmp_path, capsys):
    assert main(["config", "check", str(REPO / "config" / "demo.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("api:\n  token: short\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "api.token" in capsys.readouterr().err


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in readme and "README.md" in ci
