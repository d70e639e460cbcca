"""Errors the engine raises to callers of EngineControl; the HTTP API maps them to 404, 409 and 400."""

from __future__ import annotations


class DialerError(Exception):
    """Base of the engine's caller-facing errors; ``str(error)`` is the message shown to the caller."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DialerError):
    """No such campaign, agent, call or lead."""

    http_status = 404


class Conflict(DialerError):
    """The request clashes with the current state (campaign already stopped, agent on a call, duplicate lead)."""

    http_status = 409


class BadRequest(DialerError):
    """The request itself is malformed (invalid number, unknown disposition field)."""

    http_status = 400
