"""Notifications: the staff inbox, opt-outs, the duty roster and what was sent to whom.

    GET    /api/v1/inbox                         the logged-in staff member's messages, newest first
                                                 (?page=1&per_page=20&unread=true)
    POST   /api/v1/inbox/read                    mark read: {"ids": [..]}, or {} for all
    POST   /api/v1/inbox/<id>/read               mark one read
    GET    /api/v1/notify/opt-outs               a staff member's own opt-outs
    POST   /api/v1/notify/opt-outs               opt out: staff {"channels"}; a citizen (no login)
                                                 {"case_no", "phone", "channels"}; channels: sms,
                                                 email, app_push or "*" (legally required notices go anyway)
    DELETE /api/v1/notify/opt-outs               opt back in (the same body)
    GET    /api/v1/notify/duty                   the duty roster (?township=&role=), who is on duty now
    POST   /api/v1/notify/duty                   add an entry (a shift with starts_at/ends_at, or standing)
    DELETE /api/v1/notify/duty/<id>              remove an entry
    GET    /api/v1/cases/<case_no>/deliveries    what was sent to whom for a case (masked), with attempts
    GET    /api/v1/notify/deliveries             ?status=failed: deliveries in one status (operators)
    POST   /api/v1/notify/deliveries/<id>/retry  send a failed delivery again, with the same key
"""
from __future__ import annotations

from services.common.web import api
from services.contracts.errors import Forbidden, Invalid, NotFound
from services.gateway.auth import Principal
from services.gateway.base import read_json

ROSTER_READERS = ("operator", "county_supervisor", "township_head", "psych_coordinator")
ROSTER_EDITORS_COUNTY = ("operator", "county_supervisor")
DELIVERY_ADMINS = ("operator", "county_supervisor")


def _owners(principal: Principal) -> list[str]:
    """The ids a staff member's messages are addressed to: their directory id and their account."""
    return [i for i in (principal.directory_id, principal.id) if i]


def _int_arg(request, name: str, default: int, low: int = 1, high: int = 500) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a whole number", {name: ["must be a whole number"]}) from None
    if not low <= value <= high:  # an unbounded number reaches SQL as an out-of-range LIMIT
        raise Invalid(f"{name} out of range", {name: [f"must be between {low} and {high}"]})
    return value


def _flag_arg(request, name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("1", "true", "yes")


class NotifyApi:
    def _staff(self, request) -> Principal:
        principal = self._authenticate(request)
        if principal.kind != "staff":
            raise Forbidden("only a staff account has an inbox and notification settings")
        return principal

    def _role_in(self, request, roles) -> Principal:
        principal = self._authenticate(request)
        if principal.role not in roles:
            raise Forbidden(f"{principal.role} may not do this")
        return principal

    # -- the inbox ---------------------------------------------------------------------------
    @api("GET", "/api/v1/inbox")
    def inbox(self, request):
        principal = self._staff(request)
        return self._call("notify", "inbox", _owners(principal), page=_int_arg(request, "page", 1, high=1_000_000),
                          per_page=_int_arg(request, "per_page", 20), unread_only=_flag_arg(request, "unread"))

    @api("POST", "/api/v1/inbox/read")
    def inbox_read(self, request):
        principal = self._staff(request)
        body = read_json(request) if request.get_data(cache=True) else {}
        return self._call("notify", "mark_read", _owners(principal), body.get("ids"))

    @api("POST", "/api/v1/inbox/<int:message_id>/read")
    def inbox_read_one(self, request, message_id):
        principal = self._staff(request)
        return self._call("notify", "mark_read", _owners(principal), [message_id])

    # -- opt-outs ----------------------------------------------------------------------------
    @api("GET", "/api/v1/notify/opt-outs")
    def opt_outs(self, request):
        return self._call("notify", "staff_opt_outs", _owners(self._staff(request)))

    @api("POST", "/api/v1/notify/opt-outs")
    def opt_out(self, request):
        return self._opt(request, True)

    @api("DELETE", "/api/v1/notify/opt-outs")
    def opt_in(self, request):
        return self._opt(request, False)

    def _opt(self, request, opted_out: bool):
        body = read_json(request)
        principal = self._principal(request)
        if principal is not None and principal.kind == "staff":
            return self._call("notify", "staff_opt_out", _owners(principal), principal.id, body.get("channels"),
                              opted_out)
        # a citizen: their case number and the phone they gave are the proof, limited like the lookup
        case_no = body.get("case_no")
        keys = (f"case:{case_no.strip()[:40]}",) if isinstance(case_no, str) else ()
        return self._guarded(request, keys, lambda: self._call(
            "notify", "citizen_opt_out", case_no, body.get("phone"), body.get("channels"), opted_out), NotFound)

    # -- the duty roster ---------------------------------------------------------------------
    @api("GET", "/api/v1/notify/duty")
    def duty(self, request):
        principal = self._role_in(request, ROSTER_READERS)
        township = request.args.get("township") or None
        if principal.role == "township_head":
            township = principal.township
        return self._call("notify", "duty_roster", township=township, role=request.args.get("role") or None)

    @api("POST", "/api/v1/notify/duty")
    def add_duty(self, request):
        principal = self._role_in(request, (*ROSTER_EDITORS_COUNTY, "township_head"))
        entry = read_json(request)
        if principal.role == "township_head" and (entry.get("township") != principal.township
                                                   or entry.get("role") == "psych_coordinator"):
            raise Forbidden("a township head edits the on-duty and supervisor entries of their own township")
        return 201, self._call("notify", "add_duty", entry, principal.id)

    @api("DELETE", "/api/v1/notify/duty/<int:entry_id>")
    def remove_duty(self, request, entry_id):
        principal = self._role_in(request, (*ROSTER_EDITORS_COUNTY, "township_head"))
        scope = principal.township if principal.role == "township_head" else None
        return self._call("notify", "remove_duty", entry_id, township_scope=scope)

    # -- deliveries --------------------------------------------------------------------------
    @api("GET", "/api/v1/cases/<case_no>/deliveries")
    def case_deliveries(self, request, case_no):
        principal = self._authenticate(request)
        if principal.kind not in ("staff", "operator"):
            raise Forbidden("deliveries are shown to staff")
        self._require_read(principal, case_no)
        return {"case_no": case_no, "deliveries": self._call("notify", "case_deliveries", case_no)}

    @api("GET", "/api/v1/notify/deliveries")
    def deliveries(self, request):
        self._role_in(request, DELIVERY_ADMINS)
        return {"deliveries": self._call("notify", "deliveries", request.args.get("status") or "failed",
                                         _int_arg(request, "limit", 100))}

    @api("POST", "/api/v1/notify/deliveries/<delivery_id>/retry")
    def retry_delivery(self, request, delivery_id):
        self._role_in(request, DELIVERY_ADMINS)
        return self._call("notify", "retry_delivery", delivery_id)


def openapi_paths(errors) -> dict:
    """This area's operations for the OpenAPI document (services/gateway/openapi.py)."""
    staff = [{"bearer": []}]
    staff_or_key = [{"apiKey": []}, {"bearer": []}]

    def op(summary, security, codes, *, params=(), body=None, ok="200"):
        operation = {"summary": summary, "responses": {ok: {"description": "done"}, **errors(*codes)},
                     "parameters": [{"name": n, "in": where, "required": where == "path",
                                     "schema": {"type": kind}} for n, where, kind in params]}
        if security:
            operation["security"] = security
        if body:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        return operation

    obj = {"type": "object"}
    return {
        "/api/v1/inbox": {"get": op("The logged-in staff member's messages, newest first", staff, (400, 401, 403),
                                    params=[("page", "query", "integer"), ("per_page", "query", "integer"),
                                            ("unread", "query", "boolean")])},
        "/api/v1/inbox/read": {"post": op("Mark messages read: {ids}, or all", staff, (400, 401, 403), body=obj)},
        "/api/v1/inbox/{message_id}/read": {"post": op("Mark one message read", staff, (401, 403),
                                                       params=[("message_id", "path", "integer")])},
        "/api/v1/notify/opt-outs": {
            "get": op("A staff member's own opt-outs", staff, (401, 403)),
            "post": op("Opt out of channels: staff (login) {channels}; a citizen {case_no, phone, channels}. "
                       "Legally required notices still go (429 after repeated misses)", None, (400, 404, 429),
                       body=obj),
            "delete": op("Opt back in (the same body)", None, (400, 404, 429), body=obj)},
        "/api/v1/notify/duty": {
            "get": op("The duty roster and who is on duty now", staff_or_key, (401, 403),
                      params=[("township", "query", "string"), ("role", "query", "string")]),
            "post": op("Add a roster entry (a shift with starts_at/ends_at, or standing duty)", staff_or_key,
                       (400, 401, 403), body=obj, ok="201")},
        "/api/v1/notify/duty/{entry_id}": {"delete": op("Remove a roster entry", staff_or_key, (401, 403, 404),
                                                        params=[("entry_id", "path", "integer")])},
        "/api/v1/cases/{case_no}/deliveries": {"get": op("What was sent to whom for a case (masked), with attempts",
                                                         staff_or_key, (401, 403, 404),
                                                         params=[("case_no", "path", "string")])},
        "/api/v1/notify/deliveries": {"get": op("Deliveries in one status (default failed)", staff_or_key, (401, 403),
                                                params=[("status", "query", "string"), ("limit", "query", "integer")])},
        "/api/v1/notify/deliveries/{delivery_id}/retry": {"post": op(
            "Send a failed delivery again, with the same idempotency key", staff_or_key, (400, 401, 403, 404),
            params=[("delivery_id", "path", "string")])},
    }
