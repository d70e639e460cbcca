"""`dialer` command line: every module in dialer/commands/ registers its subcommands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import dialer.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialer", description="SIP softswitch and predictive dialer engine")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in sorted(pkgutil.iter_modules(dialer.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"dialer.commands.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
