"""Fixtures of the media tests: an engine on the 40000-49999 range and fake RTP peers on loopback."""

from __future__ import annotations

import pytest
from media_peers import FakePeer, media_settings

from sip.media.engine import MediaEngine


@pytest.fixture
async def engine():
    media = MediaEngine(media_settings(inactivity_check_interval_s=0.05))
    yield media
    await media.close()


@pytest.fixture
async def peers():
    started: list[FakePeer] = []

    async def make(host: str = "127.0.0.1", codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> FakePeer:
        peer = await FakePeer.start(host, codecs)
        started.append(peer)
        return peer

    yield make
    for peer in started:
        peer.close()
