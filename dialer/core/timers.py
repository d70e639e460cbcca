"""A heap of deadlines with lazy cancellation: O(log n) per timer, no sleeping."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable


class TimerHeap:
    """Each key has at most one live deadline; setting it again or cancelling it makes older entries stale."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, tuple[float, int]] = {}
        self._sequence = itertools.count()

    def set(self, key: Hashable, at: float) -> None:
        entry = (at, next(self._sequence))
        self._live[key] = entry
        heapq.heappush(self._heap, (*entry, key))

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def deadline_of(self, key: Hashable) -> float | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Hashable | None:
        """The earliest key whose deadline is at or before ``now`` (removed), or None."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        at, sequence, key = heapq.heappop(self._heap)
        del self._live[key]
        return key

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            at, sequence, key = heap[0]
            if self._live.get(key) == (at, sequence):
                return
            heapq.heappop(heap)
