"""Psych: the counsellor pool, matching, consent, offers and sessions (`/api/v1/psych/...`).

Who may do what (the psych service checks again what only it can know, e.g. that an
offer is yours or that you are the case's assigned counsellor):

| area | roles |
|---|---|
| read the pool, statistics | operator, psych_coordinator, county_supervisor, township_head; a counsellor: own record |
| change the pool | operator, psych_coordinator; a counsellor changes their own availability only |
| match preview, cases, offers lists | operator, psych_coordinator, county_supervisor; a counsellor sees their own |
| consent | those, the counsellors offered the case, and staff who may read the case (its mediators …) |
| coordinator offer / match again | operator, psych_coordinator |
| accept / decline an offer | only the counsellor offered it |
| record a session | only the assigned counsellor |
| read session notes | ONLY the counsellor who wrote them and the psych coordinator; not even the operator key |
"""
from __future__ import annotations

from types import SimpleNamespace

from services.common.web import api
from services.contracts.errors import Forbidden
from services.gateway.auth import Principal
from services.gateway.base import read_json
from services.gateway.bootstrap import load_accounts
from services.psych.sessions import COORDINATOR_ROLE, COUNSELLOR_ROLE, can_read_notes

POOL_READERS = ("operator", COORDINATOR_ROLE, "county_supervisor", "township_head")
POOL_EDITORS = ("operator", COORDINATOR_ROLE)
OVERSIGHT = ("operator", COORDINATOR_ROLE, "county_supervisor")
PAGING = ("limit", "offset")


def _actor(principal: Principal) -> dict:
    return {"kind": principal.kind, "id": principal.id, "role": principal.role,
            "directory_id": principal.directory_id, "township": principal.township}


def _filters(request) -> dict:
    return {key: value for key, value in request.args.items() if key not in PAGING}


def _optional_json(request) -> dict:
    """A body for actions where it is optional (accept, deactivate): empty means {}."""
    return read_json(request) if request.get_data(cache=True) else {}


def strip_unreadable_notes(principal: Principal, items: list[dict]) -> list[dict]:
    """The gateway's own check on session notes, whatever the service returned."""
    for item in items:
        writer = SimpleNamespace(counsellor_id=item.get("counsellor_id"))
        if "notes" in item and not can_read_notes(principal.role, principal.directory_id, writer):
            item.pop("notes")
    return items


class PsychApi:
    def _psych_principal(self, request, *roles: str) -> Principal:
        principal = self._authenticate(request)
        if principal.role not in roles:
            raise Forbidden(f"the {principal.role} role may not do this")
        return principal

    def _listing(self, request, method: str):
        """A filtered, paged list that the service scopes to the reader (a counsellor: their own)."""
        principal = self._psych_principal(request, *OVERSIGHT, COUNSELLOR_ROLE)
        return self._call("psych", method, _filters(request), _actor(principal), request.args.get("limit"),
                          request.args.get("offset"))

    def _activation(self, request, counsellor_id: str, active: bool):
        principal = self._psych_principal(request, *POOL_EDITORS)
        reason = _optional_json(request).get("reason")
        return self._call("psych", "set_counsellor_active", counsellor_id, active, reason, _actor(principal))

    def _answer(self, request, offer_id: str, accepted: bool):
        principal = self._psych_principal(request, COUNSELLOR_ROLE)
        return self._call("psych", "answer_offer", offer_id, accepted, _optional_json(request), _actor(principal))

    # -- the pool ---------------------------------------------------------------------
    @api("GET", "/api/v1/psych/counsellors")
    def psych_counsellors(self, request):
        self._psych_principal(request, *POOL_READERS)
        return self._call("psych", "list_counsellors", _filters(request), request.args.get("limit"),
                          request.args.get("offset"))

    @api("POST", "/api/v1/psych/counsellors")
    def psych_create_counsellor(self, request):
        principal = self._psych_principal(request, *POOL_EDITORS)
        record = self._call("psych", "create_counsellor", read_json(request), _actor(principal))
        self._record_unmasked(principal, request, None, f"counsellor:{record['id']}")
        username = record["id"].lower()
        created = load_accounts([{"username": username, "role": COUNSELLOR_ROLE, "directory_id": record["id"],
                                  "township": record["township_code"], "display_name": record["name"]}], self.db)
        return 201, {**record, "account": {"username": username, "created": bool(created)}}

    @api("GET", "/api/v1/psych/counsellors/<counsellor_id>")
    def psych_counsellor(self, request, counsellor_id):
        principal = self._psych_principal(request, *POOL_READERS, COUNSELLOR_ROLE)
        own = principal.role == COUNSELLOR_ROLE and principal.directory_id == counsellor_id
        if principal.role == COUNSELLOR_ROLE and not own:
            raise Forbidden("a counsellor may read only their own record")
        reveal = own or principal.role == COORDINATOR_ROLE
        record = self._call("psych", "get_counsellor", counsellor_id, reveal)
        if reveal and not own:
            self._record_unmasked(principal, request, None, f"counsellor:{counsellor_id}")
        return record

    @api("PATCH", "/api/v1/psych/counsellors/<counsellor_id>")
    def psych_update_counsellor(self, request, counsellor_id):
        principal = self._psych_principal(request, *POOL_EDITORS, COUNSELLOR_ROLE)
        record = self._call("psych", "update_counsellor", counsellor_id, read_json(request), _actor(principal))
        if principal.directory_id != counsellor_id:
            self._record_unmasked(principal, request, None, f"counsellor:{counsellor_id}")
        return record

    @api("POST", "/api/v1/psych/counsellors/<counsellor_id>/deactivate")
    def psych_deactivate(self, request, counsellor_id):
        return self._activation(request, counsellor_id, False)

    @api("POST", "/api/v1/psych/counsellors/<counsellor_id>/activate")
    def psych_activate(self, request, counsellor_id):
        return self._activation(request, counsellor_id, True)

    @api("GET", "/api/v1/psych/stats")
    def psych_stats(self, request):
        self._psych_principal(request, *POOL_READERS)
        return self._call("psych", "pool_stats", request.args.get("scope") == "active")

    @api("POST", "/api/v1/psych/match")
    def psych_match(self, request):
        self._psych_principal(request, *OVERSIGHT)
        return self._call("psych", "match", read_json(request))

    # -- cases and offers ----------------------------------------------------------------
    @api("GET", "/api/v1/psych/cases")
    def psych_cases(self, request):
        return self._listing(request, "list_cases")

    @api("GET", "/api/v1/psych/cases/<case_no>")
    def psych_case(self, request, case_no):
        principal = self._psych_principal(request, *OVERSIGHT, COUNSELLOR_ROLE)
        return self._call("psych", "get_case", case_no, _actor(principal))

    @api("POST", "/api/v1/psych/cases/<case_no>/consent")
    def psych_consent(self, request, case_no):
        principal = self._authenticate(request)
        if principal.role not in (*OVERSIGHT, COUNSELLOR_ROLE):
            if principal.kind != "staff" or not self._may_read(principal, case_no):
                raise Forbidden("you may not record consent for this case")
        return self._call("psych", "record_consent", case_no, read_json(request), _actor(principal))

    @api("POST", "/api/v1/psych/cases/<case_no>/offers")
    def psych_coordinator_offer(self, request, case_no):
        principal = self._psych_principal(request, *POOL_EDITORS)
        return self._call("psych", "coordinator_offer", case_no, _optional_json(request), _actor(principal))

    @api("GET", "/api/v1/psych/offers")
    def psych_offers(self, request):
        return self._listing(request, "list_offers")

    @api("POST", "/api/v1/psych/offers/<offer_id>/accept")
    def psych_accept(self, request, offer_id):
        return self._answer(request, offer_id, True)

    @api("POST", "/api/v1/psych/offers/<offer_id>/decline")
    def psych_decline(self, request, offer_id):
        return self._answer(request, offer_id, False)

    # -- sessions --------------------------------------------------------------------------
    @api("POST", "/api/v1/psych/cases/<case_no>/sessions")
    def psych_record_session(self, request, case_no):
        principal = self._psych_principal(request, COUNSELLOR_ROLE)
        body = self._call("psych", "record_session", case_no, read_json(request), _actor(principal))
        return 201, strip_unreadable_notes(principal, [body])[0]

    @api("GET", "/api/v1/psych/cases/<case_no>/sessions")
    def psych_sessions(self, request, case_no):
        principal = self._psych_principal(request, *OVERSIGHT, COUNSELLOR_ROLE)
        body = self._call("psych", "list_sessions", case_no, _actor(principal))
        items = strip_unreadable_notes(principal, body["items"])
        if any("notes" in item for item in items):
            self._record_unmasked(principal, request, case_no, "psych_session_notes")
        return {"items": items}

    @api("POST", "/api/v1/psych/cases/<case_no>/outcome")
    def psych_outcome(self, request, case_no):
        principal = self._psych_principal(request, *POOL_EDITORS, COUNSELLOR_ROLE)
        return self._call("psych", "record_outcome", case_no, read_json(request), _actor(principal))


# -- OpenAPI ----------------------------------------------------------------------------
COUNSELLOR = {"type": "object", "description": "services/psych/reference/README.md shows the record; township "
              "may be a name or code; recusal.persons entries are {phone} or {id_number} (stored hashed)",
              "properties": {name: {} for name in ("name", "gender", "birth_year", "occupation", "specialities",
                                                   "certification", "township", "phone", "weekly_capacity",
                                                   "availability", "recusal", "active")}}
REASON = {"type": "object", "properties": {"reason": {"type": "string"}}}
_PATHS = (  # method, path, summary, request body (a contracts.psych schema name, optional with "?"), status
    ("get", "/api/v1/psych/counsellors", "The counsellor roster: filters active, township, speciality, occupation, "
     "certification, gender, age_band, urgent_callout, q; limit/offset; phones masked", None, 200),
    ("post", "/api/v1/psych/counsellors", "Add a counsellor (and their staff account)", COUNSELLOR, 201),
    ("get", "/api/v1/psych/counsellors/{counsellor_id}", "One counsellor", None, 200),
    ("patch", "/api/v1/psych/counsellors/{counsellor_id}", "Change a counsellor (a counsellor: own availability)",
     COUNSELLOR, 200),
    ("post", "/api/v1/psych/counsellors/{counsellor_id}/deactivate", "Take out of matching; open offers move on",
     "?", 200),
    ("post", "/api/v1/psych/counsellors/{counsellor_id}/activate", "Back into matching", "?", 200),
    ("get", "/api/v1/psych/stats", "人才储备库: the pool by age band, gender, occupation, speciality, certification, "
     "township; capacity (scope=active for active counsellors only)", None, 200),
    ("post", "/api/v1/psych/match", "Ranked candidates with score and reasons for a case profile; offers nobody",
     "PsychMatchInput", 200),
    ("get", "/api/v1/psych/cases", "Psych cases (filters status, urgent, counsellor_id, follow_up_overdue)", None, 200),
    ("get", "/api/v1/psych/cases/{case_no}", "The psych side of a case: consent, offers, sessions (never notes)",
     None, 200),
    ("post", "/api/v1/psych/cases/{case_no}/consent", "Record the party's consent (or an emergency reason)",
     "PsychConsentInput", 200),
    ("post", "/api/v1/psych/cases/{case_no}/offers", "Coordinator: offer a named counsellor, or match again",
     "?PsychCoordinatorOfferInput", 200),
    ("get", "/api/v1/psych/offers", "Offers (a counsellor: their own)", None, 200),
    ("post", "/api/v1/psych/offers/{offer_id}/accept", "The offered counsellor accepts", "?PsychOfferAnswerInput", 200),
    ("post", "/api/v1/psych/offers/{offer_id}/decline", "The offered counsellor declines; the next one is offered",
     "?PsychOfferAnswerInput", 200),
    ("post", "/api/v1/psych/cases/{case_no}/sessions", "The assigned counsellor records a session (notes confidential)",
     "PsychSessionInput", 201),
    ("get", "/api/v1/psych/cases/{case_no}/sessions", "Sessions; notes only for their writer and the psych coordinator",
     None, 200),
    ("post", "/api/v1/psych/cases/{case_no}/outcome", "End the case with an outcome", "PsychOutcomeInput", 200),
)


def add_openapi(spec, errors) -> None:
    """Register the psych paths on the gateway's OpenAPI document (`errors` builds the error responses)."""
    from services.contracts import psych as schemas

    for name in ("MatchInput", "ConsentInput", "CoordinatorOfferInput", "OfferAnswerInput", "SessionInput",
                 "OutcomeInput"):
        spec.components.schema(f"Psych{name}", schema=getattr(schemas, name))
    by_path: dict[str, dict] = {}
    for method, path, summary, body, status in _PATHS:
        operation = {"summary": summary, "tags": ["psych"], "security": [{"bearer": []}, {"apiKey": []}],
                     "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                                    for name in ("counsellor_id", "case_no", "offer_id") if f"{{{name}}}" in path],
                     "responses": {str(status): {"description": "ok"}, **errors(400, 401, 403, 404, 409, 503)}}
        if body is not None:
            optional = isinstance(body, str) and body.startswith("?")
            schema = (body.lstrip("?") or REASON) if isinstance(body, str) else body
            operation["requestBody"] = {"required": not optional, "content": {"application/json": {"schema": schema}}}
        by_path.setdefault(path, {})[method] = operation
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
