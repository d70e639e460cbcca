"""Loopback ports for the peers that tests and benchmarks start (SIPp, baresip, Kamailio, control sockets).

A peer's port is chosen here and bound by the peer a moment later, so the choice must not be taken in between:
ports are drawn outside the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default), where
no outgoing connection and no port-0 bind on the machine can land, and are probed free for UDP and TCP alike,
since a peer listening on TCP (or on both) needs the port in both spaces. Ports already handed out in this process
are not handed out again.
"""

from __future__ import annotations

import random
import socket

PEER_PORTS = range(12000, 20000)
_given: set[int] = set()


def port_in_use(port: int, host: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` free for UDP and TCP, outside the ephemeral range, not handed out before."""
    for _ in range(1000):
        port = random.randrange(PEER_PORTS.start, PEER_PORTS.stop)
        if port in _given or any(port_in_use(port, host, kind) for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
            continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port in {PEER_PORTS.start}-{PEER_PORTS.stop - 1} on {host}")
