"""The simulated world (carrier, callees and agents' conversations) on a virtual clock: pure and seeded.

The world only obeys commands from the controller (the engine core): it never connects or drops a call by itself.
It decides what a dialled number does (answer after a ring time, busy, invalid, no answer), how long each
conversation lasts, whether a caller left in silence hangs up first, and when agents go on break.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pacing.simulator_report import Observations, SimulationReport, build_report


class Scenario(BaseModel):
    """A campaign to simulate. Durations are lognormal given by mean and standard deviation, seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agents: int = Field(20, ge=1, description="agents logged in for the whole shift; default 20")
    hours: float = Field(8.0, gt=0, description="shift length, hours; default 8")
    answer_rate: float = Field(
        0.30,
        ge=0,
        le=1,
        description="share of dials whose callee picks up (those whose ring time passes the no-answer timeout end as"
        " no answer); default 0.30",
    )
    busy_rate: float = Field(0.10, ge=0, le=1, description="share of dials answered busy (486); default 0.10")
    invalid_rate: float = Field(0.05, ge=0, le=1, description="share of dials to invalid numbers (404); default 0.05")
    ring_mean_s: float = Field(12.0, gt=0, description="ring time to answer, mean, seconds; default 12")
    ring_sd_s: float = Field(6.0, gt=0, description="ring time to answer, standard deviation, seconds; default 6")
    busy_after_s: float = Field(3.0, ge=0, description="time until a busy signal, mean, seconds; default 3")
    invalid_after_s: float = Field(1.5, ge=0, description="time until an invalid-number reply, mean, seconds; default 1.5")
    no_answer_timeout_s: float = Field(25.0, gt=0, description="carrier's no-answer timeout (480), seconds; default 25")
    talk_mean_s: float = Field(180.0, gt=0, description="conversation length, mean, seconds; default 180")
    talk_sd_s: float = Field(120.0, gt=0, description="conversation length, standard deviation, seconds; default 120")
    wrap_up_s: float = Field(10.0, ge=0, description="agents' wrap-up after each call (the engine's), seconds; default 10")
    connect_limit_s: float = Field(
        2.0, gt=0, description="answered call must reach an agent within this (the engine's), seconds; default 2"
    )
    caller_patience_mean_s: float | None = Field(
        None, gt=0, description="mean time a callee waits in silence before hanging up (exponential); None: never"
    )
    answer_rate_change_at_h: float | None = Field(
        None, ge=0, description="hour of the shift at which the answer rate changes; None: no change"
    )
    answer_rate_after: float | None = Field(None, ge=0, le=1, description="answer rate after that change")
    breaks_per_agent: int = Field(0, ge=0, description="breaks each agent takes during the shift; default 0")
    break_s: float = Field(900.0, gt=0, description="length of each break, seconds; default 900")

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        for name, rate in (("answer_rate", self.answer_rate), ("answer_rate_after", self.answer_rate_after)):
            if rate is not None and rate + self.busy_rate + self.invalid_rate > 1 + 1e-12:
                raise ValueError(f"{name} + busy_rate + invalid_rate must not exceed 1")
        if (self.answer_rate_change_at_h is None) != (self.answer_rate_after is None):
            raise ValueError("answer_rate_change_at_h and answer_rate_after go together")
        if self.breaks_per_agent * self.break_s >= self.hours * 3600:
            raise ValueError("breaks_per_agent * break_s must be shorter than the shift")
        return self

    @property
    def duration_s(self) -> float:
        return self.hours * 3600.0

    def answer_rate_at(self, now: float) -> float:
        if self.answer_rate_change_at_h is not None and now >= self.answer_rate_change_at_h * 3600.0:
            return float(self.answer_rate_after)  # type: ignore[arg-type]
        return self.answer_rate


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallFailed:
    call_id: str
    at: float
    outcome: Literal["busy", "no_answer", "invalid"]
    sip_code: int


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class TalkFinished:
    call_id: str
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentBreakStarted:
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentBreakEnded:
    agent_id: str
    at: float


WorldEvent = Union[CallAnswered, CallFailed, CallerHungUp, TalkFinished, AgentBreakStarted, AgentBreakEnded]


class SimulationError(RuntimeError):
    """A command the world cannot obey (unknown call, wrong state, time going backwards)."""


@dataclass(slots=True)
class _Call:
    dialled_at: float
    state: str = "ringing"  # ringing | answered | talking | ended
    answered_at: float | None = None
    connected_at: float | None = None
    talk_ends_at: float | None = None
    agent_id: str | None = None


def _lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    sigma2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - sigma2 / 2), float(np.sqrt(sigma2))


class SimulatedWorld:
    """See the module docstring. Agents are `agent_ids` (agent-001 ...), all logged in from 0 to `duration_s`."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.seed = seed
        self.duration_s = scenario.duration_s
        self.agent_ids = tuple(f"agent-{i + 1:03d}" for i in range(scenario.agents))
        self._rng = np.random.default_rng(seed)
        self._ring = _lognormal_params(scenario.ring_mean_s, scenario.ring_sd_s)
        self._talk = _lognormal_params(scenario.talk_mean_s, scenario.talk_sd_s)
        self._queue: list[tuple[float, int, WorldEvent]] = []
        self._sequence = 0
        self._calls: dict[str, _Call] = {}
        self._talking_agents: set[str] = set()
        self._now = 0.0
        self.log = Observations()
        self._break_started: dict[str, float] = {}
        self._schedule_breaks()

    # the clock --------------------------------------------------------------------------------------------------
    def next_event_time(self) -> float | None:
        self._discard_stale()
        return self._queue[0][0] if self._queue else None

    def pop_events(self, until: float) -> list[WorldEvent]:
        events: list[WorldEvent] = []
        while True:
            self._discard_stale()
            if not self._queue or self._queue[0][0] > until:
                break
            at, _, event = heapq.heappop(self._queue)
            self._advance(at)
            self._apply(event)
            events.append(event)
        return events

    # commands ---------------------------------------------------------------------------------------------------
    def dial(self, call_id: str, now: float) -> None:
        self._advance(now)
        if call_id in self._calls:
            raise SimulationError(f"dial: call {call_id!r} already exists")
        self._calls[call_id] = _Call(dialled_at=now)
        self.log.dials.append(now)
        s = self.scenario
        draw = self._rng.random()
        if draw < s.invalid_rate:
            self._push(now + self._rng.exponential(s.invalid_after_s), CallFailed(call_id, 0.0, "invalid", 404))
        elif draw < s.invalid_rate + s.busy_rate:
            self._push(now + self._rng.exponential(s.busy_after_s), CallFailed(call_id, 0.0, "busy", 486))
        elif draw < s.invalid_rate + s.busy_rate + s.answer_rate_at(now):
            ring = self._rng.lognormal(*self._ring)
            if ring < s.no_answer_timeout_s:
                self._push(now + ring, CallAnswered(call_id, 0.0))
            else:
                self._push(now + s.no_answer_timeout_s, CallFailed(call_id, 0.0, "no_answer", 480))
        else:
            self._push(now + s.no_answer_timeout_s, CallFailed(call_id, 0.0, "no_answer", 480))

    def connect(self, call_id: str, agent_id: str, now: float) -> None:
        self._advance(now)
        call = self._call(call_id, "connect")
        if call.state != "answered":
            raise SimulationError(f"connect: call {call_id!r} is {call.state}, not answered")
        if agent_id not in self.agent_ids:
            raise SimulationError(f"connect: unknown agent {agent_id!r}")
        if agent_id in self._talking_agents:
            raise SimulationError(f"connect: agent {agent_id!r} is already talking")
        call.state, call.agent_id, call.connected_at = "talking", agent_id, now
        self._talking_agents.add(agent_id)
        talk = float(self._rng.lognormal(*self._talk))
        self.log.connects.append((now, now - float(call.answered_at)))  # type: ignore[arg-type]
        call.talk_ends_at = now + talk
        self._push(call.talk_ends_at, TalkFinished(call_id, agent_id, 0.0))

    def drop(self, call_id: str, now: float) -> None:
        """The engine found no agent within the connect limit: message played, call hung up (abandoned)."""
        self._advance(now)
        call = self._call(call_id, "drop")
        if call.state == "ended":
            return
        if call.state != "answered":
            raise SimulationError(f"drop: call {call_id!r} is {call.state}; only answered calls are dropped")
        call.state = "ended"
        self.log.abandons.append(now)

    def cancel(self, call_id: str, now: float) -> None:
        """Ring timeout: the engine CANCELs a call still ringing (it ends as no answer)."""
        self._advance(now)
        call = self._call(call_id, "cancel")
        if call.state == "ended":
            return
        if call.state != "ringing":
            raise SimulationError(f"cancel: call {call_id!r} is {call.state}, not ringing")
        call.state = "ended"

    def report(self) -> SimulationReport:
        """KPIs of what the world observed between 0 and the end of the shift."""
        talking = [c for c in self._calls.values() if c.state == "talking"]
        talks = self.log.talks + [(float(c.connected_at), float(c.talk_ends_at)) for c in talking]  # type: ignore[arg-type]
        breaks = self.log.breaks + [(start, np.inf) for start in self._break_started.values()]
        return build_report(self.scenario, self.log, talks, breaks)

    # the world's future, for oracle benchmarks only (benchmarks/pacing_ceiling.py): no engine can know it -------
    def planned_talk_ends(self) -> dict[str, float]:
        """Agent id -> when its running conversation will end (already drawn when the call was connected)."""
        return {c.agent_id: float(c.talk_ends_at) for c in self._calls.values()  # type: ignore[misc, arg-type]
                if c.state == "talking"}

    def planned_answers(self) -> dict[str, float]:
        """Call id -> when a call still ringing will be answered; ringing calls absent from it will fail."""
        return {event.call_id: at for at, _, event in self._queue
                if isinstance(event, CallAnswered) and self._calls[event.call_id].state == "ringing"}

    # internals --------------------------------------------------------------------------------------------------
    def _call(self, call_id: str, command: str) -> _Call:
        try:
            return self._calls[call_id]
        except KeyError:
            raise SimulationError(f"{command}: unknown call {call_id!r}") from None

    def _advance(self, now: float) -> None:
        if now < self._now - 1e-9:
            raise SimulationError(f"time went backwards: {now} < {self._now}")
        self._now = max(self._now, now)

    def _push(self, at: float, event: WorldEvent) -> None:
        event = _at(event, at)
        heapq.heappush(self._queue, (at, self._sequence, event))
        self._sequence += 1

    def _stale(self, event: WorldEvent) -> bool:
        if isinstance(event, (CallAnswered, CallFailed)):
            return self._calls[event.call_id].state != "ringing"
        if isinstance(event, CallerHungUp):
            return self._calls[event.call_id].state != "answered"
        return False

    def _discard_stale(self) -> None:
        while self._queue and self._stale(self._queue[0][2]):
            heapq.heappop(self._queue)

    def _apply(self, event: WorldEvent) -> None:
        if isinstance(event, CallAnswered):
            call = self._calls[event.call_id]
            call.state, call.answered_at = "answered", event.at
            self.log.answers.append(event.at)
            patience = self.scenario.caller_patience_mean_s
            if patience is not None:
                self._push(event.at + self._rng.exponential(patience), CallerHungUp(event.call_id, 0.0))
        elif isinstance(event, CallFailed):
            self._calls[event.call_id].state = "ended"
        elif isinstance(event, CallerHungUp):
            self._calls[event.call_id].state = "ended"
            self.log.abandons.append(event.at)
        elif isinstance(event, TalkFinished):
            call = self._calls.pop(event.call_id)
            self._talking_agents.discard(event.agent_id)
            self.log.talks.append((float(call.connected_at), event.at))  # type: ignore[arg-type]
        elif isinstance(event, AgentBreakStarted):
            self._break_started[event.agent_id] = event.at
        elif isinstance(event, AgentBreakEnded):
            self.log.breaks.append((self._break_started.pop(event.agent_id), event.at))

    def _schedule_breaks(self) -> None:
        s = self.scenario
        if s.breaks_per_agent == 0:
            return
        slot = s.duration_s / s.breaks_per_agent
        for agent_id in self.agent_ids:
            for index in range(s.breaks_per_agent):
                start = index * slot + self._rng.uniform(0, max(slot - s.break_s, 0.0))
                self._push(start, AgentBreakStarted(agent_id, 0.0))
                self._push(start + s.break_s, AgentBreakEnded(agent_id, 0.0))


def _at(event: WorldEvent, at: float) -> WorldEvent:
    return replace(event, at=float(at))
