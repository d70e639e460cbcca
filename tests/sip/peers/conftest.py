"""Fixtures for the tests against independent user agents: pjsua2 processes and a Switch on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REQUIRE_PEERS
from tests.sip.peers.harness import PjsuaPeer


def require_pjsua2() -> None:
    """Like require_binary: a missing pjsua2 fails the run in CI (DIALER_REQUIRE_PEERS=1), skips elsewhere."""
    try:
        import pjsua2  # noqa: F401
    except ImportError as error:
        message = f"pjsua2-python is not importable ({error}); pip install pjsua2-python"
        if REQUIRE_PEERS:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
async def pjsua(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start pjsua2 user agents (one process each); all are stopped after the test."""
    require_pjsua2()
    peers: list[PjsuaPeer] = []

    async def start(name: str, role: str, **kwargs) -> PjsuaPeer:  # type: ignore[no-untyped-def]
        peer = PjsuaPeer(tmp_path, name, role, **kwargs)
        peers.append(peer)
        return await peer.start()

    yield start
    for peer in peers:
        await peer.stop()
