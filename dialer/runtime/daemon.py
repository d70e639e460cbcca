"""`dialer run`: one node as a daemon. SIGTERM/SIGINT stop dialling, let live calls finish within
node.shutdown_grace_s, flush and exit 0; SIGHUP reloads the config file after validating it (an invalid file is
logged and the running config kept)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from dialer.config import ConfigError, DialerConfig, load_config
from dialer.runtime.engine import Engine

log = logging.getLogger("dialer.run")


class Daemon:
    def __init__(self, config_path: Path, config: DialerConfig) -> None:
        self.config_path = config_path
        self.engine = Engine(config)
        self._stop = asyncio.Event()
        self._reloads: set[asyncio.Task] = set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        await self.engine.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        engine = self.engine
        log.info("ready: node=%s sip=%s:%s api=http://%s:%s metrics=http://%s:%s/metrics config=%s",
                 engine.config.node.name, engine.config.sip.bind_host, engine.sip_port, engine.config.api.bind_host,
                 engine.api_port, engine.config.metrics.bind_host, engine.metrics_port, self.config_path)
        await self._stop.wait()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await self.engine.stop()
        return 0

    def _on_stop_signal(self, signum: int) -> None:
        log.info("%s: stopping dialling; live calls get %.0f s", signal.Signals(signum).name,
                 self.engine.config.node.shutdown_grace_s)
        self._stop.set()

    def _on_reload_signal(self) -> None:
        task = asyncio.create_task(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> bool:
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            log.error("SIGHUP: config not reloaded, keeping the running one:\n%s", exc)
            return False
        needs_restart = await self.engine.reload(config)
        log.info("SIGHUP: config reloaded from %s", self.config_path)
        if needs_restart:
            log.warning("SIGHUP: these changes take effect at the next restart: %s", ", ".join(needs_restart))
        return True


def run_daemon(config_path: Path) -> int:
    """Exit 0 after a clean stop, 2 on an unusable config (file, line and key named on stderr)."""
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        log.error("cannot start:\n%s", exc)
        return 2
    try:
        return uvloop.run(Daemon(config_path, config).run())
    except OSError as exc:  # a port in use, a database that cannot be reached
        log.error("cannot start: %s", exc)
        return 1
