"""The core's clock is the event loop's monotonic time; the records want wall-clock UTC. One offset maps them."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class WallClock:
    def __init__(self, monotonic_now: float) -> None:
        self._offset = time.time() - monotonic_now

    def wall(self, monotonic: float) -> datetime:
        return datetime.fromtimestamp(monotonic + self._offset, timezone.utc)

    def monotonic(self, wall: datetime) -> float:
        return wall.timestamp() - self._offset
