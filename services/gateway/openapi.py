"""The OpenAPI document of the public HTTP API, generated from the wire schemas."""
from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

ERROR = {
    "type": "object",
    "required": ["error", "message", "fields"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}


def _errors(*codes):
    return {str(code): {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for code in codes}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    spec = APISpec(title="Lanling dispute resolution API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    spec.components.schema("Error", ERROR)
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-Api-Key"})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    from services.contracts import channels

    for channel, schema in channels.CHANNELS.items():
        name = f"{channel.capitalize()}Submission"
        spec.components.schema(name, schema=schema)
        spec.path(
            path=f"/api/v1/submissions/{channel}",
            operations={"post": {
                "summary": f"Submit a case on the {channel} channel",
                "security": [{"apiKey": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": name}}},
                "responses": {
                    "202": {"description": "accepted: a new case or merged into an open one"},
                    "200": {"description": "the same reference again: the first answer"},
                    **_errors(400, 401, 403, 409, 413, 415, 503),
                },
            }},
        )
    spec.path(path="/api/v1/health", operations={"get": {
        "summary": "200 when every service answers, 503 naming the silent ones",
        "responses": {"200": {"description": "all up"}, "503": {"description": "some silent"}},
    }})
    spec.path(path="/api/v1/cases/{case_no}", operations={"get": {
        "summary": "The case view: status, level, mechanism, mediators, deadlines, sources, history",
        "security": [{"apiKey": []}, {"bearer": []}],
        "parameters": [{"name": "case_no", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the case"}, **_errors(401, 403, 404, 503)},
    }})
    spec.path(path="/api/v1/auth/login", operations={"post": {
        "summary": "Staff login; returns a signed, expiring token",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}}}},
        "responses": {"200": {"description": "token"}, **_errors(400, 401)},
    }})
    from services.gateway.api_routing import openapi_paths

    for path, operations in openapi_paths().items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
