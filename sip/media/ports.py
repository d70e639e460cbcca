"""RTP port pool: even RTP ports in the configured range, RTCP on the next (odd) port reserved with it."""

from __future__ import annotations

from collections import deque


class PortsExhausted(RuntimeError):
    """Every RTP port pair of the range is in use."""


class PortPool:
    """Hands out even ports; a released port goes to the back of the queue so a late packet of the old call is
    unlikely to reach the next call that gets the port."""

    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min % 2)
        if first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}-{port_max} holds no even/odd port pair")
        self.port_min = port_min
        self.port_max = port_max
        self._free: deque[int] = deque(range(first, port_max, 2))  # port_max excluded: RTCP needs port + 1
        self._in_use: set[int] = set()
        self.capacity = len(self._free)

    def acquire(self) -> int:
        if not self._free:
            raise PortsExhausted(
                f"all {self.capacity} RTP port pairs in {self.port_min}-{self.port_max} are in use"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        if port not in self._in_use:
            raise ValueError(f"RTP port {port} is not allocated")
        self._in_use.remove(port)
        self._free.append(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def available(self) -> int:
        return len(self._free)
