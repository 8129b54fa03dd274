"""Health, the OpenAPI document and staff login."""
from __future__ import annotations

import logging
from datetime import timezone

import eventlet
import requests
from werkzeug.wrappers import Response

from services.common import config as settings
from services.common import operations
from services.common.rpc import call_with_timeout
from services.common.web import Unavailable, api
from services.contracts.errors import Invalid, Unauthorized
from services.gateway import auth
from services.gateway.base import BACKENDS, read_json
from services.gateway.models import StaffAccount
from services.gateway.openapi import openapi_document

log = logging.getLogger(__name__)


class CoreApi:
    @api("GET", "/api/v1/health")
    def health(self, request):
        services = self._ask_health()
        figures = self._queue_figures()
        silent = sorted(name for name, answer in services.items() if not answer.get("ok"))
        body = {"status": "ok" if not silent else "unavailable", "silent": silent, "services": services,
                "queues": operations.by_service(figures, services) if figures is not None else None}
        return (503 if silent else 200), body

    @api("GET", "/metrics")
    def metrics(self, request):
        """The operations view for Prometheus: queue depths, dead letters, redeliveries, ages."""
        services = self._ask_health()
        figures = self._queue_figures()
        text = operations.prometheus_text(figures, operations.by_service(figures or [], services),
                                          {name: bool(answer.get("ok")) for name, answer in services.items()})
        return Response(text, status=200, mimetype="text/plain", headers={"Cache-Control": "no-store"})

    def _ask_health(self) -> dict:
        timeout = min(self.config.get("RPC_TIMEOUT", 10.0), 3.0)
        pool = eventlet.GreenPool()

        def ask(service):
            try:
                return service, call_with_timeout(getattr(self, service), service, "health", timeout=timeout)
            except Unavailable as exc:
                return service, {"ok": False, "error": str(exc)}

        return dict(pool.imap(ask, BACKENDS))

    def _queue_figures(self) -> list[dict] | None:
        try:
            return operations.queue_figures(operations.fetch_queues(self.config["AMQP_URI"]))
        except (requests.RequestException, ValueError) as exc:
            log.warning("the broker's management API did not answer: %s", exc)
            return None

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
        with self.db.reading() as session:   # read what is needed while the row is attached
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
