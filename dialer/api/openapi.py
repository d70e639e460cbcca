"""The OpenAPI 3.1 document of the HTTP API, generated from the route table."""

from __future__ import annotations

from http import HTTPStatus

from pydantic import BaseModel, Field

from dialer.api.routes import ROUTES, Route

REF = "#/components/schemas/{model}"


class ErrorBody(BaseModel):
    error: str = Field(..., description="what went wrong, naming the field or object concerned")
    field: str | None = Field(None, description="the body field at fault, for 400 responses about a body")


def _response(status: int, schema: dict) -> dict:
    return {"description": HTTPStatus(status).phrase, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route) -> dict:
    error = {"$ref": REF.format(model="ErrorBody")}
    operation: dict = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": {str(route.success_status): _response(route.success_status, {"type": "object"})},
    }
    if route.path_parameters:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in route.path_parameters
        ]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}},
        }
    if route.public:
        operation["security"] = []
        return operation
    statuses = [400, 401]
    if route.path_parameters:
        statuses += [404, 409]
    if route.body is not None:
        statuses.append(413)
    for status in statuses:
        operation["responses"][str(status)] = _response(status, error)
    return operation


def build_openapi(version: str) -> dict:
    schemas: dict[str, dict] = {"ErrorBody": ErrorBody.model_json_schema(ref_template=REF)}
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        if route.body is not None:
            schemas[route.body.__name__] = route.body.model_json_schema(ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dialer engine API",
            "version": version,
            "description": "Campaigns, agents, leads and live status of a dialer node. Every operation except this "
            "document needs `Authorization: Bearer <api.token>`.",
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
