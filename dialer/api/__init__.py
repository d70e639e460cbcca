"""HTTP API (aiohttp) over the engine's EngineControl; see dialer/api/routes.py for the routes."""

from dialer.api.app import create_app, start_api
from dialer.api.openapi import build_openapi
from dialer.api.routes import ROUTES

__all__ = ["ROUTES", "build_openapi", "create_app", "start_api"]
