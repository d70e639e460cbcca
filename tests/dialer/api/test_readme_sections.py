"""The README sections this part owns stay true to the code: every API route and every engine config key."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from dialer import config
from dialer.api import ROUTES

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    start = README.index(heading + "\n")
    following = re.compile(r"^#{2,3} ", re.M).search(README, start + len(heading) + 1)
    return README[start: following.start() if following else len(README)]


def test_http_api_section_lists_every_route():
    text = section("## HTTP API")
    for route in ROUTES:
        assert f"`{route.method} {route.path}`" in text, route.path


def documented_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, config.RetrySettings | config.RetryRule):
            keys += documented_keys(field.annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_engine_configuration_reference_documents_every_key():
    text = section("### Engine configuration reference")
    for heading, model in (("node", config.NodeSettings), ("api", config.ApiSettings),
                           ("metrics", config.MetricsSettings), ("agents[]", config.AgentSettings),
                           ("campaigns[]", config.CampaignSettings)):
        table = text[text.index(f"**`{heading}`**"):]
        table = table[: table.index("\n\n", table.index("| key |"))]
        for key in documented_keys(model):
            assert f"| `{key}` |" in table, f"{heading}.{key} is not documented"
