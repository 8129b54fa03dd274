"""Health, the OpenAPI document and staff login."""
from __future__ import annotations

from datetime import timezone

import eventlet

from services.common import config as settings
from services.common.rpc import call_with_timeout
from services.common.web import Unavailable, api
from services.contracts.errors import Invalid, Unauthorized
from services.gateway import auth
from services.gateway.base import BACKENDS, read_json
from services.gateway.models import StaffAccount
from services.gateway.openapi import openapi_document


class CoreApi:
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
        with self.db.reading() as session:  # read it inside: reading() expires the rows when it ends
            account = session.get(StaffAccount, username)
            if account is None or not account.active or not auth.check_password(password, account.password_hash):
                raise Unauthorized("unknown username or wrong password")
            principal = auth.Principal(kind="staff", id=account.username, role=account.role,
                                       township=account.township, directory_id=account.directory_id)
            must_change_password = account.must_change_password
        now = self._now()
        token = auth.issue_token(principal, settings.secret("LANLING_TOKEN_SECRET"), now)
        return {
            "token": token,
            "expires_at": (now + auth.TOKEN_TTL).astimezone(timezone.utc).isoformat(),
            "role": principal.role,
            "must_change_password": must_change_password,
        }
