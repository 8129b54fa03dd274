"""The one HTTP edge: authentication, then RPC to the service that owns the answer."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import eventlet
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from sqlalchemy import select

from services.common import config as settings
from services.common.dependencies import DatabaseProvider
from services.common.rpc import call_with_timeout
from services.common.web import Unavailable, api
from services.contracts.errors import Forbidden, Invalid, NotFound, Unauthorized
from services.contracts.intake import CHANNELS
from services.gateway import auth, views
from services.gateway.models import ApiKey, Base, StaffAccount
from services.gateway.openapi import openapi_document

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
    except ValueError as exc:
        raise Invalid("the body is not valid JSON", {"body": [str(exc)]}) from exc
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", {"body": ["expected an object"]})
    return body


class GatewayService:
    name = "gateway"

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

    def _authenticate(self, request) -> auth.Principal:
        principal = self._principal(request)
        if principal is None:
            raise Unauthorized("send a valid X-Api-Key, or Authorization: Bearer <token> from POST /api/v1/auth/login")
        return principal

    # -- public -----------------------------------------------------------
    @api("GET", "/api/v1/health")
    def health(self, request):
        timeout = min(self.config.get("RPC_TIMEOUT", 10.0), 3.0)
        pool = eventlet.GreenPool()

        def ask(service):
            try:
                return service, call_with_timeout(getattr(self, service), service, "health", timeout=timeout)
            except Unavailable as exc:
                return service, {"ok": False, "error": str(exc)}

        services = dict(pool.imap(ask, BACKENDS))
        silent = sorted(name for name, answer in services.items() if not answer.get("ok"))
        body = {"status": "ok" if not silent else "unavailable", "silent": silent, "services": services}
        return (503 if silent else 200), body

    @api("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return openapi_document()

    @api("POST", "/api/v1/auth/login")
    def login(self, request):
        body = read_json(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise Invalid("username and password are required", {
                name: ["required string"] for name in ("username", "password") if not isinstance(body.get(name), str)
            })
        with self.db.reading() as session:
            account = session.get(StaffAccount, username)
        if account is None or not account.active or not auth.check_password(password, account.password_hash):
            raise Unauthorized("unknown username or wrong password")
        principal = auth.Principal(kind="staff", id=account.username, role=account.role,
                                   township=account.township, directory_id=account.directory_id)
        now = self._now()
        token = auth.issue_token(principal, settings.secret("LANLING_TOKEN_SECRET"), now)
        return {
            "token": token,
            "expires_at": (now + auth.TOKEN_TTL).astimezone(timezone.utc).isoformat(),
            "role": account.role,
            "must_change_password": account.must_change_password,
        }

    @api("POST", "/api/v1/submissions/<channel>")
    def submit(self, request, channel):
        principal = self._authenticate(request)
        if channel not in CHANNELS:
            raise NotFound(f"unknown channel {channel!r}", {"channel": [f"one of {', '.join(CHANNELS)}"]})
        if not principal.may_submit(channel):
            raise Forbidden(f"{principal.id} may not submit on channel {channel!r}")
        payload = read_json(request)
        answer = self._call("intake", "submit", channel, payload, principal.id)
        created = answer.pop("created")
        return (202 if created else 200), answer

    @api("GET", "/api/v1/cases/<case_no>")
    def get_case(self, request, case_no):
        principal = self._authenticate(request)
        intake_view = self._call("intake", "get_case", case_no)
        if not views.may_read_case(principal, intake_view):
            raise Forbidden("you may not read this case")
        try:
            workflow = self._call("mediation", "get_case", case_no)
        except NotFound:
            workflow = None
        return views.case_view(intake_view, workflow)

    @api("GET", "/api/v1/reference/townships")
    def townships(self, request):
        self._authenticate(request)
        return self._call("routing", "townships")
