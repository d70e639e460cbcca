"""Kamailio as the registrar and proxy in front of several dialer nodes: a config rendered from
kamailio.cfg.tmpl on a free loopback port, run in the foreground and logging to a file; and REGISTER sent from the
demo's agent phones so that Kamailio reaches each agent at its phone's own address."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from dialer.demo.agents import DemoAgentPhones
from sip.dialog import new_call_id, new_tag
from sip.message import Request
from sip.transaction import Address
from tests.ports import free_port, port_in_use

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")
MODULES_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
START_TIMEOUT_S = 10.0


class KamailioProxy:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / f"kamailio-{self.port}.cfg"
        self.log_path = workdir / f"kamailio-{self.port}.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> Address:
        return Address("udp", "127.0.0.1", self.port)

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    async def start(self) -> "KamailioProxy":
        self.config_path.write_text(TEMPLATE.read_text().format(listen_port=self.port, modules_dir=MODULES_DIR))
        runtime_dir = self.workdir / "kamailio-run"
        runtime_dir.mkdir(exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                self.binary, "-f", str(self.config_path), "-DD", "-E", "-n", "1", "-m", "64", "-M", "8",
                "-Y", str(runtime_dir), "-w", str(self.workdir),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not port_in_use(self.port):
            if self.process.returncode is not None or loop.time() > deadline:
                raise RuntimeError(f"kamailio did not start (exit {self.process.returncode}):\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def relayed_invites(self) -> list[tuple[str, str]]:
        """(agent user, source host:port) of every initial INVITE Kamailio relayed to a registered contact."""
        return re.findall(r"relay INVITE to (\S+) at \S+ from (\S+)$", self.log(), flags=re.MULTILINE)

    def in_dialog_methods(self) -> list[str]:
        """Methods of the in-dialog requests Kamailio routed by their Route header (it record-routed the dialog)."""
        return re.findall(r"in-dialog (\S+) from ", self.log())

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def register_agents(phones: DemoAgentPhones, registrar: Address, expires_s: int = 600) -> None:
    """Each agent phone REGISTERs its own contact (user@phone address) with the registrar; raises unless all get 200."""
    endpoint = phones.endpoint
    for agent_id in phones.agent_ids:
        aor = f"<sip:{agent_id}@{registrar.host}:{registrar.port}>"
        request = Request("REGISTER", f"sip:{registrar.host}:{registrar.port}", [
            ("Via", endpoint.via_for(registrar)), ("Max-Forwards", "70"), ("From", f"{aor};tag={new_tag()}"),
            ("To", aor), ("Call-ID", new_call_id("agent")), ("CSeq", "1 REGISTER"),
            ("Contact", endpoint.contact_for(registrar, agent_id)), ("Expires", str(expires_s)),
            ("User-Agent", endpoint.user_agent),
        ])
        response = await endpoint.request(request, registrar)
        if response is None or response.status != 200:
            raise RuntimeError(f"REGISTER of {agent_id} got {response.status if response else 'no answer'}")
