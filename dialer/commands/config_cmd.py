"""`dialer config check FILE`: validate a configuration file and report every problem."""

from __future__ import annotations

import sys

from dialer.config import ConfigError, load_config


def register(subparsers) -> None:
    config = subparsers.add_parser("config", help="configuration tools")
    actions = config.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(handler=check_file)


def check_file(args) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.file}: ok ({len(config.campaigns)} campaigns, {len(config.trunks)} trunks, {len(config.agents)} agents)")
    return 0
