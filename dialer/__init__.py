"""The dialer engine: campaigns, leads, agents, the dial loop, storage, HTTP API, CLI, metrics."""

__version__ = "0.1.0"
