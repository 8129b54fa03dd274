"""Errors that cross the RPC boundary and keep their meaning at the gateway.

services/common/rpc.py registers them with nameko, which then re-raises the same
type on the caller's side, so the gateway maps each one to its HTTP status
(DESIGN §3 error shape).
"""


class ServiceError(Exception):
    code = "invalid"
    status = 400

    def __init__(self, message: str, fields: dict | None = None):
        super().__init__(message, fields or {})
        self.message = message
        self.fields = fields or {}

    def __str__(self):
        return self.message


class Invalid(ServiceError):
    code, status = "invalid", 400


class NotFound(ServiceError):
    code, status = "not_found", 404


class Conflict(ServiceError):
    code, status = "conflict", 409


class Forbidden(ServiceError):
    code, status = "forbidden", 403


class Unauthorized(ServiceError):
    code, status = "unauthorized", 401


class Unavailable(ServiceError):
    """Not ready to answer yet (e.g. intake has no directory of places): try again shortly."""

    code, status = "unavailable", 503


REMOTE_ERRORS = (Invalid, NotFound, Conflict, Forbidden, Unauthorized, Unavailable)
