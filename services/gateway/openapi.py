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
    spec.path(path="/api/v1/lookup", operations={"post": {
        "summary": "办理回复: a citizen's case by its number and the phone given (429 after repeated misses)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["case_no", "phone"],
            "properties": {"case_no": {"type": "string"}, "phone": {"type": "string"}}}}}},
        "responses": {"200": {"description": "progress, masked, with a short-lived citizen token"},
                      **_errors(400, 404, 429, 503)},
    }})
    spec.path(path="/api/v1/cases/{case_no}/sources/{channel}/{reference}/unmerge", operations={"post": {
        "summary": "Undo a wrong merge: the source becomes a case of its own",
        "security": [{"apiKey": []}, {"bearer": []}],
        "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                       for n in ("case_no", "channel", "reference")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
        "responses": {"202": {"description": "the new case number"}, **_errors(400, 401, 403, 404, 409, 503)},
    }})
    spec.path(path="/api/v1/asyncapi.json", operations={"get": {
        "summary": "The AsyncAPI document of the AMQP ingress, its results and the feedback on intake.egress",
        "responses": {"200": {"description": "AsyncAPI 2.6"}},
    }})
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
    return spec.to_dict()
