"""The demo's simulated carrier: a UA of ours that answers a configurable mix of calls after a random ring,
sends callee audio and hangs up after a random talk time, or refuses with busy (486), invalid (404),
congestion (503), or no answer (480 after ringing, or rings until our CANCEL)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from dialer.demo.peer import PeerCall, SimulatedPeer
from dialer.demo.settings import CarrierMix

REFUSALS = (("busy", 486), ("invalid", 404), ("congestion", 503))


class DemoCarrier(SimulatedPeer):
    name = "carrier"

    def __init__(self, endpoint, media, audio, *, mix: CarrierMix, seed: int = 0) -> None:
        super().__init__(endpoint, media, audio)
        self.mix = mix
        self.rng = random.Random(seed)
        self.given = Counter()  # what the carrier decided per INVITE

    def plan(self) -> tuple[str, int | None, float]:
        """(kind, SIP status or None to answer / ring forever, ring seconds), drawn when the INVITE arrives."""
        mix, draw = self.mix, self.rng.random()
        ring_s = self.rng.uniform(mix.ring_min_s, mix.ring_max_s)
        if draw < mix.answer_rate:
            return "answered", None, ring_s
        draw -= mix.answer_rate
        for kind, status in REFUSALS:
            share = getattr(mix, f"{kind}_rate")
            if draw < share:
                return kind, status, ring_s if kind == "busy" else min(ring_s, 0.3)
            draw -= share
        if self.rng.random() < mix.no_answer_480_share:
            return "no_answer", 480, mix.no_answer_ring_s
        return "no_answer", None, float("inf")  # rings until the caller CANCELs

    def on_invite(self, call: PeerCall) -> None:
        kind, status, ring_s = self.plan()
        self.given[kind] += 1
        talk_s = self.rng.uniform(self.mix.talk_min_s, self.mix.talk_max_s)
        call.respond(180)
        self.spawn(self._play_out(call, kind, status, ring_s, talk_s))

    async def _play_out(self, call: PeerCall, kind: str, status: int | None, ring_s: float, talk_s: float) -> None:
        if ring_s == float("inf"):
            await call.ended
            return
        await asyncio.wait({call.ended}, timeout=ring_s)
        if not call.alive:
            return
        if status is not None:
            call.respond(status)
            return
        if await call.answer():
            await asyncio.wait({call.ended}, timeout=talk_s)
            if call.alive:
                call.hang_up()
