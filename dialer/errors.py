"""Errors the engine raises towards its callers; the HTTP API maps them to 404, 409 and 400."""


class DialerError(Exception):
    pass


class NotFound(DialerError):
    pass


class Conflict(DialerError):
    pass


class BadRequest(DialerError):
    pass
