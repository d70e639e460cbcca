"""A telephony double on real (asyncio) time: a seeded carrier whose callees answer, refuse or ring out, talk for
a lognormal time once bridged, and hang up when left alone too long. Drives `dialer.runtime.Engine` in tests
without sockets (the SIP switch is proven separately against SIPp, baresip and pjsua2)."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dialer.core.events import Answered, Ended, Failed, Ringing
from dialer.telephony import CallEvent


class SimulatedCarrier(BaseModel):
    """The callee mix of the simulated backend. Durations are lognormal with the given mean and sd."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer_rate: float = Field(0.3, ge=0, le=1, description="share of calls answered, ratio; default 0.3")
    busy_rate: float = Field(0.1, ge=0, le=1, description="share answered with 486 Busy, ratio; default 0.1")
    invalid_rate: float = Field(0.05, ge=0, le=1, description="share answered with 404, ratio; default 0.05")
    congestion_rate: float = Field(0.0, ge=0, le=1, description="share answered with 503, ratio; default 0")
    ring_mean_s: float = Field(6.0, gt=0, description="ring time before answer or failure, mean, seconds")
    ring_sd_s: float = Field(3.0, ge=0, description="ring time, standard deviation, seconds")
    talk_mean_s: float = Field(60.0, gt=0, description="conversation once bridged, mean, seconds")
    talk_sd_s: float = Field(30.0, ge=0, description="conversation, standard deviation, seconds")
    patience_s: float = Field(8.0, gt=0, description="an answered callee left alone hangs up after this, seconds")
    announcement_s: float = Field(3.0, ge=0, description="how long playing an announcement takes, seconds")
    time_scale: float = Field(1.0, gt=0, description="multiplies every duration (tests use small values)")

    def model_post_init(self, __context) -> None:
        if self.answer_rate + self.busy_rate + self.invalid_rate + self.congestion_rate > 1 + 1e-9:
            raise ValueError("answer_rate + busy_rate + invalid_rate + congestion_rate must not exceed 1")


SIMULATED_FAILURES = {"busy": (486, "busy"), "invalid": (404, "invalid"), "congestion": (503, "congestion")}


def lognormal_sample(rng: random.Random, mean: float, sd: float) -> float:
    if sd <= 0:
        return mean
    sigma2 = math.log1p((sd / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


class SimulatedCall:
    def __init__(self, call_id: str, on_end=None) -> None:
        self.call_id = call_id
        self._on_end = on_end
        self.state = "calling"
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.bridged_with: SimulatedCall | None = None
        self.talk_s = 0.0
        self.task: asyncio.Task | None = None

    def emit(self, event: CallEvent) -> None:
        match event:
            case Ringing():
                self.state = "ringing"
            case Answered():
                self.state = "answered"
            case Failed() | Ended():
                self.state = "ended"
                if self._on_end is not None:
                    self._on_end()
        self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, (Failed, Ended)):
                return


class SimulatedTelephony:
    """Calls ring, answer, fail and hang up on real time with a seeded mix; agent legs answer at once."""

    def __init__(self, carrier: SimulatedCarrier | None = None, *, seed: int = 0,
                 trunk_channels: dict[str, int] | None = None) -> None:
        self.carrier = carrier or SimulatedCarrier()
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._trunk_channels = trunk_channels or {}
        self._in_use: dict[str, int] = {}
        self._calls: dict[str, SimulatedCall] = {}
        self.played: list[str] = []
        self.bridges: list[tuple[str, str, Path | None]] = []

    def _scaled(self, seconds: float) -> float:
        return seconds * self.carrier.time_scale

    def _new_call(self, prefix: str, on_end=None) -> SimulatedCall:
        call = SimulatedCall(f"{prefix}-{next(self._ids)}", on_end)
        self._calls[call.call_id] = call
        return call

    async def originate(self, trunk: str, number: str, caller_id: str, headers: dict[str, str],
                        ring_timeout_s: float) -> SimulatedCall:
        limit = self._trunk_channels.get(trunk)
        if limit is not None and self._in_use.get(trunk, 0) >= limit:
            raise RuntimeError(f"trunk {trunk!r} has no free channel (max {limit})")
        self._in_use[trunk] = self._in_use.get(trunk, 0) + 1
        failure, ring_s, talk_s = self._plan(ring_timeout_s)
        call = self._new_call("sim", on_end=lambda: self._release(trunk))
        call.talk_s = talk_s
        call.task = asyncio.create_task(self._callee(call, failure, ring_s))
        return call

    def _release(self, trunk: str) -> None:
        self._in_use[trunk] -= 1

    def channels_in_use(self, trunk: str) -> int:
        return self._in_use.get(trunk, 0)

    def _plan(self, ring_timeout_s: float) -> tuple[tuple[int, str] | None, float, float]:
        """Drawn when the call is placed, so a seed gives the same calls whatever the task timing."""
        c = self.carrier
        draw = self._rng.random()
        ring_s = lognormal_sample(self._rng, c.ring_mean_s, c.ring_sd_s)
        talk_s = lognormal_sample(self._rng, c.talk_mean_s, c.talk_sd_s)
        if draw < c.answer_rate:
            return ((487, "no_answer") if ring_s >= ring_timeout_s else None), min(ring_s, ring_timeout_s), talk_s
        draw -= c.answer_rate
        for kind in ("busy", "invalid", "congestion"):
            rate = getattr(c, f"{kind}_rate")
            if draw < rate:
                return SIMULATED_FAILURES[kind], min(ring_s, ring_timeout_s), talk_s
            draw -= rate
        return (487, "no_answer"), ring_timeout_s, talk_s

    async def _callee(self, call: SimulatedCall, failure: tuple[int, str] | None, ring_s: float) -> None:
        call.emit(Ringing(call.call_id))
        await asyncio.sleep(self._scaled(ring_s))
        if failure is not None:
            call.emit(Failed(call.call_id, *failure))
            return
        call.emit(Answered(call.call_id))
        await asyncio.sleep(self._scaled(self.carrier.patience_s))
        if call.bridged_with is None and call.state == "answered":
            call.emit(Ended(call.call_id, "remote", "callee gave up"))

    async def call_agent(self, uri_or_agent_id: str) -> SimulatedCall:
        call = self._new_call("agent")
        call.emit(Answered(call.call_id))
        return call

    async def bridge(self, a: SimulatedCall, b: SimulatedCall, recording_path: Path | None) -> None:
        if a.state != "answered" or b.state != "answered":
            raise RuntimeError(f"cannot bridge {a.call_id} ({a.state}) with {b.call_id} ({b.state})")
        a.bridged_with, b.bridged_with = b, a
        self.bridges.append((a.call_id, b.call_id, recording_path))
        customer = a if a.call_id.startswith("sim-") else b
        if customer.task is not None:
            customer.task.cancel()
        customer.task = asyncio.create_task(self._talk(customer))

    async def _talk(self, call: SimulatedCall) -> None:
        await asyncio.sleep(self._scaled(call.talk_s))
        if call.state == "answered":
            call.emit(Ended(call.call_id, "remote", "callee hung up"))

    async def unbridge(self, a: SimulatedCall, b: SimulatedCall) -> None:
        a.bridged_with = b.bridged_with = None

    async def play(self, call: SimulatedCall, announcement_path: Path | None) -> None:
        self.played.append(call.call_id)
        await asyncio.sleep(self._scaled(self.carrier.announcement_s))

    async def hangup(self, call: SimulatedCall, reason: str = "normal") -> None:
        if call.state in ("answered", "ringing", "calling"):
            if call.task is not None:
                call.task.cancel()
            if call.state == "answered":
                call.emit(Ended(call.call_id, "local", reason))
            else:
                call.emit(Failed(call.call_id, 487, "no_answer"))
        if call.bridged_with is not None:
            call.bridged_with.bridged_with = None
            call.bridged_with = None

    async def stop(self) -> None:
        tasks = [c.task for c in self._calls.values() if c.task is not None and not c.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for call in self._calls.values():
            if call.state != "ended":
                call.emit(Ended(call.call_id, "local", "shutdown"))
