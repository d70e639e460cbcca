"""SIPp peers for the integration tests: started per test on free loopback ports, always stopped."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.ports import free_port, port_in_use

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_TIMEOUT_S = 20


_media_ports_given: set[int] = set()


def free_media_base() -> int:
    """An even port with the next three free: SIPp binds audio RTP/RTCP and video RTP/RTCP there."""
    for _ in range(200):
        base = random.randrange(31000, 32700, 4)
        if base not in _media_ports_given and not any(port_in_use(base + i) for i in range(4)):
            _media_ports_given.add(base)
            return base
    raise RuntimeError("no free media port block for SIPp")


class SippPeer:
    """One SIPp process running a scenario file, as UAS (waits for calls) or UAC (calls `remote`)."""

    def __init__(self, binary: str, scenario: str, workdir: Path, *, keys: dict[str, str] | None = None,
                 remote: str | None = None, calls: int = 1, extra: tuple[str, ...] = (), transport: str = "udp",
                 host: str = "127.0.0.1") -> None:
        self.binary = binary
        self.scenario = SCENARIOS / scenario
        self.workdir = workdir
        self.keys = keys or {}
        self.remote = remote
        self.calls = calls
        self.extra = extra
        self.transport = transport
        self.host = host
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _scenario_file(self) -> Path:
        """SIPp checks response codes when it loads a scenario, so templates ([code]) are filled in here."""
        if not self.keys:
            return self.scenario
        text = self.scenario.read_text()
        for key, value in self.keys.items():
            text = text.replace(f"[{key}]", value)
        rendered = self.workdir / f"{self.scenario.stem}-{self.port}.xml"
        rendered.write_text(text)
        return rendered

    async def start(self) -> SippPeer:
        args = [self.binary, "-sf", str(self._scenario_file()), "-i", self.host, "-p", str(self.port),
                "-t", "t1" if self.transport == "tcp" else "u1",
                "-mp", str(free_media_base()), "-m", str(self.calls), "-nostdin", "-timeout", f"{SIPP_TIMEOUT_S}s",
                "-timeout_error", "-trace_err", "-error_file", str(self.workdir / f"{self.scenario.stem}-{self.port}.err"),
                "-trace_stat", "-stf", str(self.workdir / f"{self.scenario.stem}-{self.port}.csv"), *self.extra]
        if self.remote:
            args.append(self.remote)
        self.process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd=self.workdir)
        if self.remote is None:
            for _ in range(150):  # a UAS must be listening before we call it
                if self._listening() or self.process.returncode is not None:
                    break
                await asyncio.sleep(0.02)
        return self

    def _listening(self) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        kind = socket.SOCK_STREAM if self.transport == "tcp" else socket.SOCK_DGRAM
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                return probe.connect_ex((self.host, self.port)) == 0
            try:
                probe.bind((self.host, self.port))
            except OSError:
                return True
        return False

    async def wait(self, timeout: float = SIPP_TIMEOUT_S + 5) -> int:
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), timeout)
        return self.process.returncode  # type: ignore[return-value]

    def errors(self) -> str:
        path = self.workdir / f"{self.scenario.stem}-{self.port}.err"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def sipp(tmp_path: Path):  # type: ignore[no-untyped-def]
    binary = require_binary("sipp")
    peers: list[SippPeer] = []

    async def start(scenario: str, **kwargs) -> SippPeer:  # type: ignore[no-untyped-def]
        peer = SippPeer(binary, scenario, tmp_path, **kwargs)
        peers.append(peer)
        return await peer.start()

    yield start
    for peer in peers:
        await peer.stop()
