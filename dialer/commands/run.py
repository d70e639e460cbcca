"""`dialer run --config FILE`: the production daemon (one node)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a node: switch, dial loop, API and metrics (SIGTERM stops, SIGHUP reloads)",
        description="Run one dialer node from a config file. SIGTERM stops dialling, lets live calls finish within "
        "node.shutdown_grace_s and exits 0; SIGHUP reloads the file (an invalid file is logged, the running config "
        "kept). At start, calls a crash left open are closed in the records and this node's claimed leads released.")
    parser.add_argument("--config", type=Path, required=True, help="YAML config file")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from dialer.runtime.daemon import run_daemon

    return run_daemon(args.config)
