"""The one exception type the SIP parser raises."""

from __future__ import annotations


class SipParseError(ValueError):
    """A message or header that does not follow RFC 3261 grammar.

    `status` is the response code a server answers a malformed request with (400, or 505 for a bad version).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
