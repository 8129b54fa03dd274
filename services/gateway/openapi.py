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
        "summary": "200 when every service answers, 503 naming the silent ones; per service its outbox and, "
                   "under queues, messages waiting, dead letters, redeliveries and the oldest one's age",
        "responses": {"200": {"description": "all up"}, "503": {"description": "some silent"}},
    }})
    spec.path(path="/metrics", operations={"get": {
        "summary": "Prometheus metrics: per service and queue, messages waiting, dead letters, redeliveries, "
                   "the age of the oldest unprocessed message; outbox backlog",
        "responses": {"200": {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
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
    _case_paths(spec)
    from services.gateway.api_notify import openapi_paths as notify_paths

    for path, operations in notify_paths(_errors).items():
        spec.path(path=path, operations=operations)
    from services.gateway.api_psych import add_openapi as add_psych

    add_psych(spec, _errors)
    from services.gateway.api_routing import openapi_paths

    for path, operations in openapi_paths().items():
        spec.path(path=path, operations=operations)
    from services.gateway.api_audit import openapi_paths as audit_paths

    for path, operations in audit_paths(_errors).items():
        spec.path(path=path, operations=operations)
    return _with_common_errors(spec.to_dict())


# What the edge itself may answer, whatever the operation: bad parameters or body, missing or
# wrong credentials, an unknown id in the path, a refused state change, an oversized or
# non-JSON body, and 503 when the service behind it does not answer in time.
def _with_common_errors(document: dict) -> dict:
    error = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            codes = {503}
            if operation.get("parameters") or operation.get("requestBody") or "{" in path:
                codes.add(400)
            if operation.get("security"):
                codes |= {401, 403}
            if "{" in path:
                codes.add(404)
            if method != "get":
                codes.add(409)
            if operation.get("requestBody") or method != "get":
                codes |= {400, 413, 415}
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(str(code), error)
    return document


STAFF = [{"bearer": []}, {"apiKey": []}]
CASE_NO = {"name": "case_no", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(*names):
    return [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in names]


def _case_paths(spec) -> None:
    """Mediation's API: worklists, staff actions, parties, attachments, the agreement, ratings, reports."""
    spec.path(path="/api/v1/cases", operations={"get": {
        "summary": "Worklist: the cases this staff member may see, filtered and paginated",
        "security": STAFF,
        "parameters": _query("status", "level", "township", "unit", "mediator", "overdue", "from", "to", "page",
                             "per_page"),
        "responses": {"200": {"description": "{items, page, per_page, total}"}, **_errors(400, 401, 403, 503)},
    }})
    spec.path(path="/api/v1/cases/{case_no}/actions/{action}", operations={"post": {
        "summary": "A staff action: accept, record_session, resolve, fail, escalate, refer, return, "
                   "request_extension, approve_extension, reject_extension, reassign, reopen, redo, "
                   "dismiss_rating, request_psych, mark_major, resolve_on_site, mark_judicial_confirmation",
        "security": STAFF,
        "parameters": [CASE_NO, {"name": "action", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "the new status and deadline"},
                      **_errors(400, 401, 403, 404, 409, 503)},
    }})
    spec.path(path="/api/v1/cases/{case_no}/parties", operations={"put": {
        "summary": "Replace the parties (items with id update that party; absent fields are kept)",
        "security": STAFF, "parameters": [CASE_NO],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": {"description": "the parties, masked"}, **_errors(400, 401, 403, 404, 503)},
    }})
    spec.path(path="/api/v1/cases/{case_no}/attachments", operations={"post": {
        "summary": "Attach a file (raw body; image/jpeg, image/png, image/webp, application/pdf; "
                   "MEDIATION_ATTACHMENT_MAX_BYTES, 10 MiB by default)",
        "security": STAFF, "parameters": [CASE_NO, *_query("kind", "filename")],
        "responses": {"201": {"description": "the attachment's metadata"},
                      **_errors(400, 401, 403, 404, 413, 415, 503)},
    }})
    spec.path(path="/api/v1/cases/{case_no}/agreement", operations={"get": {
        "summary": "The 调解协议书 as printable HTML; masked unless version=full by staff handling the case",
        "security": STAFF, "parameters": [CASE_NO, *_query("version")],
        "responses": {"200": {"description": "text/html"}, **_errors(401, 403, 404, 503)},
    }})
    spec.path(path="/api/v1/cases/{case_no}/evaluation", operations={"post": {
        "summary": "The citizen's rating (满意, 基本满意, 不满意) with the token of the rating link",
        "parameters": [CASE_NO],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["token", "rating"],
            "properties": {"token": {"type": "string"}, "rating": {"type": "string"},
                           "comment": {"type": "string"}}}}}},
        "responses": {"200": {"description": "rated"}, **_errors(400, 403, 404, 409, 429, 503)},
    }})
    spec.path(path="/api/v1/reports/scorecard", operations={"get": {
        "summary": "Scorecard per unit, township or mediator over [from, to); format=csv for CSV",
        "security": STAFF, "parameters": _query("by", "from", "to", "format"),
        "responses": {"200": {"description": "rows of rates"}, **_errors(400, 401, 403, 503)},
    }})
    spec.path(path="/api/v1/reports/hot-topics", operations={"get": {
        "summary": "兰陵热点: the most frequent dispute types and places in the last N days; format=csv",
        "security": STAFF, "parameters": _query("days", "top", "format"),
        "responses": {"200": {"description": "counts and shares"}, **_errors(400, 401, 403, 503)},
    }})
