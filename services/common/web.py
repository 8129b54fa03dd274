"""The HTTP edge on nameko's web server: JSON in, JSON out, one error shape.

Errors are `{"error": code, "message": text, "fields": {field: [reasons]}}` (DESIGN §3).
A handler returns a dict or list (200), or `(status, body)` / `(status, headers, body)`;
it raises a `ServiceError` (also when one comes back over RPC) for a 4xx.
"""
from __future__ import annotations

import json
import logging

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from services.contracts.channels import unsafe_text
from services.contracts.errors import ServiceError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
HTTP_CODES = {
    400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited", 503: "unavailable",
}


class Unavailable(Exception):
    """A service did not answer in time."""


# Exceptions (by type name, as they come back over RPC too) that mean "a database or the broker
# is down or restarting": try again shortly, 503, never a 500. A DataError or an IntegrityError
# is a bug in the code or the input and stays a 500 or its 4xx.
TRANSIENT_ERRORS = frozenset({
    "OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError", "PendingRollbackError",
    "PublishError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError",
    "RecoverableConnectionError", "AMQPConnectionError", "ConnectionForced", "Timeout",
})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, RemoteError):
        return exc.exc_type in TRANSIENT_ERRORS
    return any(cls.__name__ in TRANSIENT_ERRORS for cls in type(exc).__mro__)


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many requests; retry after {retry_after} s")
        self.retry_after = retry_after


def json_response(status: int, body, headers=None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def flat_fields(fields, prefix: str = "") -> dict[str, list[str]]:
    """`{field: [reasons]}` with dotted names, whatever shape a validator nested its errors in
    (marshmallow gives `{"parties": {0: {"phone": [...]}}}` for a nested field)."""
    flat: dict[str, list[str]] = {}
    if isinstance(fields, dict):
        for name, value in fields.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, dict):
                flat.update(flat_fields(value, key))
            else:
                items = value if isinstance(value, (list, tuple)) else [value]
                for item in items:
                    if isinstance(item, dict):
                        flat.update(flat_fields(item, key))
                    else:
                        flat.setdefault(key, []).append(str(item))
    elif fields:
        flat.setdefault(prefix or "_body", []).append(str(fields))
    return flat


def error_response(status: int, message: str, fields: dict | None = None, code: str | None = None, headers=None):
    return json_response(
        status,
        {"error": code or HTTP_CODES.get(status, "error"), "message": str(message), "fields": flat_fields(fields)},
        headers,
    )


class JsonWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        request.max_content_length = MAX_BODY_BYTES
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            # an entrypoint may accept larger bodies (file uploads): `max_body_bytes` on its class
            request.max_content_length = getattr(provider, "max_body_bytes", None) or MAX_BODY_BYTES
            request.path_values = values
            problems = unsafe_text(values) or unsafe_text(
                {key: items[0] if len(items) == 1 else items for key, items in request.args.lists()})
            if problems:  # a NUL in a query string reached PostgreSQL as a 500
                response = error_response(400, "the URL contains text that cannot be stored", problems)
            else:
                response = provider.handle_request(request)
        except HTTPException as exc:
            response = error_response(exc.code or 500, exc.description or exc.name)
        return response(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)


class ApiEntrypoint(HttpRequestHandler):
    server = JsonWebServer()

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            status, *rest = result
            headers, body = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0])
            return json_response(status, body, headers)
        return json_response(200, result)

    def response_from_exception(self, exc):
        if isinstance(exc, ServiceError):
            return error_response(exc.status, exc.message, exc.fields, exc.code)
        if isinstance(exc, HTTPException):
            return error_response(exc.code or 400, exc.description or exc.name)
        if isinstance(exc, RateLimited):
            return error_response(429, str(exc), headers={"Retry-After": str(exc.retry_after)})
        if isinstance(exc, (Unavailable, UnknownService, eventlet.Timeout)):
            return error_response(503, str(exc) or "a service did not answer in time")
        if is_transient(exc):
            log.warning("%s: a database or the broker is unavailable: %r", self.method_name, exc)
            return error_response(503, "temporarily unavailable; try again shortly",
                                  headers={"Retry-After": "5"})
        log.error("unhandled error in %s: %r", self.method_name, exc, exc_info=exc)
        return error_response(500, "internal error", code="internal")


api = ApiEntrypoint.decorator
