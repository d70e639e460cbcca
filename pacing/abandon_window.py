"""Answered and abandoned calls over the regulatory window (e.g. 24 h or 30 days), in one-minute buckets."""

from __future__ import annotations

from collections import deque

BUCKET_S = 60.0


class AbandonWindow:
    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError(f"abandon_window_s must be > 0 seconds, got {window_s!r}")
        self.window_s = window_s
        self._buckets: deque[list[float]] = deque()  # [bucket start, answers, abandons]
        self.answers = 0
        self.abandons = 0

    def _bucket(self, at: float) -> list[float]:
        start = (at // BUCKET_S) * BUCKET_S
        if not self._buckets or self._buckets[-1][0] < start:
            self._buckets.append([start, 0, 0])
        return self._buckets[-1]

    def answered(self, at: float) -> None:
        self._bucket(at)[1] += 1
        self.answers += 1

    def abandoned(self, at: float) -> None:
        self._bucket(at)[2] += 1
        self.abandons += 1

    def expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] + BUCKET_S <= now - self.window_s:
            _, answers, abandons = self._buckets.popleft()
            self.answers -= int(answers)
            self.abandons -= int(abandons)

    @property
    def rate(self) -> float:
        return self.abandons / self.answers if self.answers else 0.0
