"""Trunk capacity: concurrent channels and calls per second, shared by every campaign on the node."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

CPS_WINDOW_S = 1.0


@dataclass(slots=True)
class TrunkState:
    name: str
    max_channels: int
    max_cps: float
    in_use: int = 0
    recent_starts: deque[float] = field(default_factory=deque)

    def _forget_before(self, now: float) -> None:
        # the same sum as next_start_at(), so a start is allowed exactly at the time promised there
        while self.recent_starts and self.recent_starts[0] + CPS_WINDOW_S <= now:
            self.recent_starts.popleft()

    def free_channels(self) -> int:
        return self.max_channels - self.in_use

    def can_start(self, now: float) -> bool:
        self._forget_before(now)
        return self.in_use < self.max_channels and len(self.recent_starts) < self.max_cps

    def next_start_at(self, now: float) -> float | None:
        """When a start could next be allowed by the cps window (None: blocked on channels, not time)."""
        self._forget_before(now)
        if self.in_use >= self.max_channels:
            return None
        if len(self.recent_starts) < self.max_cps:
            return now
        excess = len(self.recent_starts) - int(self.max_cps)
        return self.recent_starts[excess] + CPS_WINDOW_S


class TrunkPool:
    def __init__(self, trunks: Iterable[tuple[str, int, float]]) -> None:
        self._trunks = {name: TrunkState(name, channels, cps) for name, channels, cps in trunks}

    def __getitem__(self, name: str) -> TrunkState:
        return self._trunks[name]

    def free_channels(self, names: Iterable[str]) -> int:
        return sum(self._trunks[name].free_channels() for name in names)

    def pick(self, names: Iterable[str], now: float) -> str | None:
        """The first trunk, in the campaign's order, with a free channel and cps budget now."""
        for name in names:
            if self._trunks[name].can_start(now):
                return name
        return None

    def next_start_at(self, names: Iterable[str], now: float) -> float | None:
        times = [t for t in (self._trunks[name].next_start_at(now) for name in names) if t is not None]
        return min(times) if times else None

    def start(self, name: str, now: float) -> None:
        trunk = self._trunks[name]
        trunk.in_use += 1
        trunk.recent_starts.append(now)

    def release(self, name: str) -> None:
        self._trunks[name].in_use -= 1
