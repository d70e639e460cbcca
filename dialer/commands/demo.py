"""`dialer demo`: the whole product on loopback for a few minutes, then a KPI summary."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from dialer.config import ConfigError, load_config
from dialer.runtime.engine import REPO_ROOT

DEFAULT_CONFIG = REPO_ROOT / "config" / "demo.yaml"
EXIT_BAD_INPUT = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the switch, a simulated carrier and simulated agents on loopback and report KPIs",
        description="Start the switch, a simulated carrier (or --carrier), N simulated agents and a lead list over "
        "several countries on loopback, dial for --minutes with live progress, then print a KPI summary. The "
        "database and recordings are under var/demo/ (fresh each run).")
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to run, minutes; default 2")
    parser.add_argument("--agents", type=int, default=None, help="simulated agents; default demo.agents.count (5)")
    parser.add_argument("--carrier", metavar="HOST:PORT", type=host_port, default=None,
                        help="send calls to this SIP peer (your PBX, SIPp) instead of the simulated carrier")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the simulated carrier, agents and leads")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config file; default config/demo.yaml")
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"), help="database and recordings; default var/demo")
    parser.set_defaults(handler=demo)


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def demo(args) -> int:
    import uvloop

    from dialer.demo.runner import DemoOptions, progress_stream, run_demo, summary_text

    if args.minutes <= 0 or (args.agents is not None and args.agents < 1):
        print("error: --minutes must be > 0 and --agents >= 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = DemoOptions(config=config, workdir=args.workdir, minutes=args.minutes,
                          agents=args.agents or config.demo.agents.count, carrier=args.carrier, seed=args.seed,
                          progress=progress_stream(args.json))
    summary, details = uvloop.run(run_demo(options))
    if args.json:
        print(json.dumps(summary))
    else:
        print(summary_text(summary, details))
    return 0
