"""One module per `dialer` subcommand, each exposing register(subparsers)."""
