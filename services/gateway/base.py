"""The gateway's plumbing: its dependencies, authentication, RPC with a timeout, JSON bodies.

Each area of the API is a mixin in api_<area>.py; service.py puts them together.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy

from services.common import config as settings
from services.common.dependencies import DatabaseProvider
from services.common.rpc import call_with_timeout
from services.contracts.channels import unsafe_text
from services.contracts.errors import Invalid, Unauthorized
from services.gateway import auth
from services.gateway.models import ApiKey, Base

log = logging.getLogger(__name__)

BACKENDS = ("intake", "routing", "mediation", "psych", "notify")


def read_json(request) -> dict:
    """The request body as a JSON object, or a 4xx naming what is wrong with it."""
    from werkzeug.exceptions import UnsupportedMediaType

    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json (UTF-8)")
    raw = request.get_data(cache=True)  # raises 413 beyond MAX_BODY_BYTES
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Invalid("the body is not valid UTF-8", {"body": [f"invalid UTF-8 at byte {exc.start}"]}) from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply for the parser
        raise Invalid("the body is not valid JSON", {"body": [str(exc)]}) from exc
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", {"body": ["expected an object"]})
    problems = unsafe_text(body)
    if problems:
        raise Invalid("the body contains text that cannot be stored", problems)
    return body


class GatewayBase:
    db = DatabaseProvider(Base.metadata)
    config = Config()
    intake = RpcProxy("intake")
    routing = RpcProxy("routing")
    mediation = RpcProxy("mediation")
    psych = RpcProxy("psych")
    notify = RpcProxy("notify")

    # -- plumbing ---------------------------------------------------------
    def _call(self, service: str, method: str, *args, **kwargs):
        timeout = self.config.get("RPC_TIMEOUT", 10.0)
        return call_with_timeout(getattr(self, service), service, method, *args, timeout=timeout, **kwargs)

    def _now(self) -> datetime:
        return self.db.clock.now()

    def _principal(self, request) -> auth.Principal | None:
        key = request.headers.get("X-Api-Key")
        if key:
            if auth.same_secret(key, settings.secret("LANLING_API_KEY")):
                return auth.Principal(kind="operator", id="operator", role="operator")
            with self.db.reading() as session:
                row = session.get(ApiKey, auth.hash_api_key(key))
                if row is not None and row.revoked_at is None:
                    return auth.Principal(kind="source", id=row.name, role="source", channels=tuple(row.channels))
            return None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return auth.read_token(header[7:].strip(), settings.secret("LANLING_TOKEN_SECRET"), self._now())
        return None

    def _guarded(self, request, keys, call, misses, limiter=None):
        """A citizen's proof (case number + phone, a rating token): answer 429 with Retry-After once
        a key has missed too often (services/gateway/ratelimit.py), else make the call, counting a miss."""
        from services.common.web import RateLimited
        from services.gateway.api_intake import LOOKUP_MISSES

        limiter = limiter or LOOKUP_MISSES
        keys = (f"ip:{request.remote_addr or 'unknown'}", *keys)
        now = self._now()
        wait = limiter.retry_after(keys, now)
        if wait is not None:
            raise RateLimited(wait)
        try:
            return call()
        except misses:
            limiter.miss(keys, now)
            raise

    def _authenticate(self, request) -> auth.Principal:
        principal = self._principal(request)
        if principal is None:
            raise Unauthorized("send a valid X-Api-Key, or Authorization: Bearer <token> from POST /api/v1/auth/login")
        return principal

