"""aiohttp application: bearer-token auth, JSON bodies validated against the route table's models, JSON errors."""

from __future__ import annotations

import hmac
import inspect
import json
import logging
import re
import traceback
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import ValidationError

import dialer
from dialer.api.openapi import build_openapi
from dialer.api.routes import ROUTES, Route
from compliance.numbers import mask_number
from dialer.errors import BadRequest, Conflict, DialerError, NotFound

if TYPE_CHECKING:
    from dialer.engine_control import EngineControl

log = logging.getLogger("dialer.api")

CONTROL = web.AppKey("control", object)
TOKEN = web.AppKey("token", bytes)
OPENAPI = web.AppKey("openapi", dict)
ROUTE = "dialer_route"
REALM = 'Bearer realm="dialer"'
ERROR_STATUS: dict[type[DialerError], int] = {BadRequest: 400, NotFound: 404, Conflict: 409}
PHONE_LIKE = re.compile(r"\+?\d[\d ()-]{5,}\d")


def mask_numbers(text: str) -> str:
    """Anything in free text that looks like a phone number, masked (exception messages may quote one)."""
    return PHONE_LIKE.sub(lambda match: mask_number(match.group()), text)


def error_response(status: int, message: str, *, field: str | None = None, headers: dict | None = None) -> web.Response:
    body = {"error": message} | ({"field": field} if field else {})
    return web.json_response(body, status=status, headers=headers)


def _credentials(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every failure leaves as a JSON body: the engine's errors by kind, aiohttp's (404, 405, 413) by status."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason, headers={k: v for k, v in exc.headers.items()
                                                               if k.lower() == "allow"})
    except DialerError as exc:
        status = next((code for kind, code in ERROR_STATUS.items() if isinstance(exc, kind)), 500)
        return error_response(status, str(exc) or type(exc).__name__)
    except Exception:
        log.error("API handler failed: %s %s\n%s", request.method, request.path, mask_numbers(traceback.format_exc()))
        return error_response(500, "internal error")


@web.middleware
async def bearer_auth(request: web.Request, handler) -> web.StreamResponse:
    route: Route | None = getattr(request.match_info.handler, ROUTE, None)
    if route is not None and route.public:
        return await handler(request)
    presented = _credentials(request)
    if presented is None:
        return error_response(401, "missing bearer token (Authorization: Bearer <api.token>)",
                              headers={"WWW-Authenticate": REALM})
    if not hmac.compare_digest(presented.encode(), request.app[TOKEN]):
        return error_response(401, "invalid bearer token",
                              headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})
    return await handler(request)


async def _read_body(request: web.Request, route: Route):
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body: not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        return route.body.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise _FieldError(field, first["msg"]) from None


class _FieldError(BadRequest):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _handler(route: Route):
    async def handle(request: web.Request) -> web.Response:
        if route.action is None:
            return web.json_response(request.app[OPENAPI])
        try:
            body = await _read_body(request, route) if route.body is not None else None
        except _FieldError as exc:
            return error_response(400, str(exc), field=exc.field)
        result = route.action(request.app[CONTROL], dict(request.match_info), body)
        if inspect.isawaitable(result):
            result = await result
        return web.json_response(result, status=route.success_status, dumps=_dumps)

    setattr(handle, ROUTE, route)
    return handle


def _dumps(value: object) -> str:
    return json.dumps(value, default=str)


def create_app(control: "EngineControl", token: str) -> web.Application:
    if not token:
        raise ValueError("the API token must not be empty")
    app = web.Application(middlewares=[json_errors, bearer_auth])
    app[CONTROL] = control
    app[TOKEN] = token.encode()
    app[OPENAPI] = build_openapi(dialer.__version__)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _handler(route))
    return app


async def start_api(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0 picks a free port); returns the runner (await runner.cleanup() to stop) and the
    port actually bound."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]
