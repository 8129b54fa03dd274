"""The audit of unmasked views: every time staff see personal data unmasked (the full agreement,
an attachment, a counsellor's phone, psychological session notes), the gateway records who, which
case (or counsellor), when and through which request, before it returns the data.

    GET /api/v1/audit/unmasked-views   ?case_no=&actor=&from=&to=&limit=  (operator, county supervisor)
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from services.common.web import api
from services.contracts.errors import Forbidden, Invalid
from services.gateway.auth import Principal
from services.gateway.models import UnmaskedView

log = logging.getLogger(__name__)

AUDIT_READERS = ("operator", "county_supervisor")


def _instant(request, name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 instant", {name: ["ISO 8601 with a UTC offset"]}) from None
    if value.tzinfo is None:
        raise Invalid(f"{name} needs a UTC offset", {name: ["ISO 8601 with a UTC offset, e.g. +08:00"]})
    return value


class AuditApi:
    def _record_unmasked(self, principal: Principal, request, case_no: str | None, subject: str) -> None:
        """Record the view first: if it cannot be recorded, the data is not shown (the error is a 5xx/503)."""
        with self.db.transaction() as uow:
            uow.session.add(UnmaskedView(at=uow.now, actor_id=principal.id[:100], actor_role=principal.role[:32],
                                         case_no=case_no, subject=subject[:100],
                                         request=f"{request.method} {request.path}"[:200]))
        log.info("unmasked view: %s (%s) %s of %s", principal.id, principal.role, subject, case_no or "-")

    @api("GET", "/api/v1/audit/unmasked-views")
    def unmasked_views(self, request):
        principal = self._authenticate(request)
        if principal.role not in AUDIT_READERS:
            raise Forbidden("only the operator and county supervisors read the audit")
        try:
            limit = int(request.args.get("limit", 100))
        except ValueError:
            raise Invalid("limit must be a whole number", {"limit": ["1..1000"]}) from None
        if not 1 <= limit <= 1000:
            raise Invalid("limit out of range", {"limit": ["1..1000"]})
        query = select(UnmaskedView).order_by(UnmaskedView.id.desc()).limit(limit)
        if request.args.get("case_no"):
            query = query.where(UnmaskedView.case_no == request.args["case_no"])
        if request.args.get("actor"):
            query = query.where(UnmaskedView.actor_id == request.args["actor"])
        start, end = _instant(request, "from"), _instant(request, "to")
        if start:
            query = query.where(UnmaskedView.at >= start)
        if end:
            query = query.where(UnmaskedView.at < end)
        with self.db.reading() as session:
            rows = session.scalars(query).all()
        return {"items": [{"id": r.id, "at": r.at.isoformat(), "actor": r.actor_id, "role": r.actor_role,
                           "case_no": r.case_no, "subject": r.subject, "request": r.request} for r in rows]}


def openapi_paths(errors) -> dict:
    query = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
             for n in ("case_no", "actor", "from", "to", "limit")]
    return {"/api/v1/audit/unmasked-views": {"get": {
        "summary": "Who saw personal data unmasked, of which case, when (newest first)",
        "security": [{"bearer": []}, {"apiKey": []}], "parameters": query,
        "responses": {"200": {"description": "{items: [{id, at, actor, role, case_no, subject, request}]}"},
                      **errors(400, 401, 403)}}}}
