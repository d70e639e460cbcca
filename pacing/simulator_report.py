"""KPIs of a simulated shift, computed from what the simulated world observed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pacing.simulator import Scenario

SERIES_BIN_S = 1800.0


@dataclass(slots=True)
class Observations:
    """Raw facts the report is computed from (times on the virtual clock, seconds)."""

    dials: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    abandons: list[float] = field(default_factory=list)
    connects: list[tuple[float, float]] = field(default_factory=list)  # (at, answered-to-bridge seconds)
    talks: list[tuple[float, float]] = field(default_factory=list)  # (connected at, ended at)
    breaks: list[tuple[float, float]] = field(default_factory=list)  # (started, ended)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start_h: float
    dials: int
    answers: int
    abandons: int
    abandon_rate: float
    talk_utilization: float


@dataclass(frozen=True, slots=True)
class SimulationReport:
    agents: int
    hours: float
    dials: int
    answers: int
    abandons: int
    abandon_rate: float  # abandoned / answered
    talk_utilization: float  # talk time / logged-in time
    occupancy: float  # (talk + wrap-up) / logged-in time
    talk_minutes_per_agent_hour: float
    mean_agent_wait_s: float  # idle (ready) agent time per connected call
    mean_answer_to_bridge_s: float
    series: tuple[SeriesPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _overlap(intervals: np.ndarray, start: float, end: float) -> float:
    if intervals.size == 0:
        return 0.0
    return float(np.clip(np.minimum(intervals[:, 1], end) - np.maximum(intervals[:, 0], start), 0, None).sum())


def _count(times: np.ndarray, start: float, end: float) -> int:
    return int(np.count_nonzero((times >= start) & (times < end)))


def build_report(
    scenario: "Scenario",
    log: Observations,
    talk_intervals: list[tuple[float, float]],
    break_intervals: list[tuple[float, float]],
) -> SimulationReport:
    """`talk_intervals` and `break_intervals` include those still running (with their scheduled or open end)."""
    duration = scenario.duration_s
    talks = np.array(talk_intervals, dtype=float).reshape(-1, 2)
    finished_ends = talks[talks[:, 1] < duration, 1]
    wraps = np.column_stack((finished_ends, finished_ends + scenario.wrap_up_s))
    breaks = np.array(break_intervals, dtype=float).reshape(-1, 2)
    dials, answers, abandons = (np.array(x, dtype=float) for x in (log.dials, log.answers, log.abandons))
    logged_in = scenario.agents * duration
    talk = _overlap(talks, 0.0, duration)
    wrap = _overlap(wraps, 0.0, duration)
    on_break = _overlap(breaks, 0.0, duration)
    connects = len(log.connects)
    answered = _count(answers, 0.0, duration)
    abandoned = _count(abandons, 0.0, duration)
    series = []
    for start in np.arange(0.0, duration, SERIES_BIN_S):
        end = min(start + SERIES_BIN_S, duration)
        a, x = _count(answers, start, end), _count(abandons, start, end)
        series.append(
            SeriesPoint(
                start_h=float(start / 3600.0),
                dials=_count(dials, start, end),
                answers=a,
                abandons=x,
                abandon_rate=x / a if a else 0.0,
                talk_utilization=_overlap(talks, start, end) / (scenario.agents * (end - start)),
            )
        )
    return SimulationReport(
        agents=scenario.agents,
        hours=scenario.hours,
        dials=_count(dials, 0.0, duration),
        answers=answered,
        abandons=abandoned,
        abandon_rate=abandoned / answered if answered else 0.0,
        talk_utilization=talk / logged_in,
        occupancy=(talk + wrap) / logged_in,
        talk_minutes_per_agent_hour=talk / 60.0 / (scenario.agents * scenario.hours),
        mean_agent_wait_s=max(logged_in - talk - wrap - on_break, 0.0) / connects if connects else 0.0,
        mean_answer_to_bridge_s=float(np.mean([d for _, d in log.connects])) if connects else 0.0,
        series=tuple(series),
    )
