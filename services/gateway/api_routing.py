"""Routing at the edge: the mediators' roster (超市), the parties' choice (点将), classification,
a case's routing history, and staff edits of the directory.

Who may do what:
- read the roster, classify a text: any authenticated caller;
- choose mediators for a case: the party (a citizen principal holding the case), the source
  system the case came from (the app forwarding its user's pick), or on the party's behalf the
  operator, a county supervisor, or the township head / receptionist of the case's township;
- a case's routing history: the staff who may read the case;
- edit rosters: the operator and county supervisors; township heads for the township and
  village mediators and the grid workers of their own township (routing checks the scope).
A person added to the directory gets a staff account (username = the id in lower case for
mediators and grid workers), with the initial staff password and must change it at first
login; deactivating someone deactivates their account.
"""
from __future__ import annotations

from eventlet import tpool
from sqlalchemy import select

from services.common import config as settings
from services.common.web import api
from services.contracts.errors import Forbidden, Invalid
from services.gateway import auth, views
from services.gateway.base import read_json
from services.gateway.models import StaffAccount

EDITORS = ("operator", "county_supervisor", "township_head")
CHOOSERS = ("operator", "county_supervisor", "township_head", "receptionist")
ROUTING_READERS = ("operator", "county_supervisor", "psych_coordinator", "township_head", "receptionist",
                   "mediator", "grid_worker")
ROSTER_FILTERS = ("specialty", "level", "township", "village")


def actor_of(principal: auth.Principal) -> dict:
    return {"id": principal.id, "role": principal.role, "kind": principal.kind, "township": principal.township,
            "directory_id": principal.directory_id}


def _flag(request, name: str) -> bool | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise Invalid(f"{name} must be true or false", {name: ["true or false"]})


class RoutingApi:
    # --- the roster, published (超市) --------------------------------------------------------

    @api("GET", "/api/v1/mediators")
    def mediators(self, request):
        """?specialty=婚姻家庭&level=village|township|county&township=…&village=…&available=true"""
        self._authenticate(request)
        filters = {name: request.args.get(name) for name in ROSTER_FILTERS if request.args.get(name)}
        return self._call("routing", "mediators", available=_flag(request, "available"), **filters)

    @api("GET", "/api/v1/mediators/<mediator_id>")
    def mediator(self, request, mediator_id):
        self._authenticate(request)
        return self._call("routing", "mediator", mediator_id)

    # --- the parties' choice (点将) -------------------------------------------------------------

    @api("POST", "/api/v1/cases/<case_no>/mediator")
    def choose_mediator(self, request, case_no):
        """{"mediators": ["MT-009-1", "MV-009-004-1"]} (the first leads) or {"mediator": "MT-009-1"}."""
        principal = self._authenticate(request)
        body = read_json(request)
        chosen = body.get("mediators", body.get("mediator"))
        if chosen is None:
            raise Invalid("name the mediator(s) chosen", {"mediators": ["required: a list of mediator ids"]})
        self._may_choose(principal, case_no)
        return self._call("routing", "choose_mediators", case_no, chosen, actor_of(principal))

    def _may_choose(self, principal: auth.Principal, case_no: str) -> None:
        if principal.kind == "citizen":
            if case_no not in principal.cases:
                raise Forbidden("you may choose mediators only for your own case")
            return
        if principal.kind == "source":  # e.g. the 兰陵首发 app forwarding its user's pick
            if not views.may_read_case(principal, self._call("intake", "get_case", case_no)):
                raise Forbidden("a source system may choose only for the cases it submitted")
            return
        if principal.role not in CHOOSERS:
            raise Forbidden(f"a {principal.role} may not choose mediators for the parties")
        if principal.role in ("township_head", "receptionist"):
            if not views.may_read_case(principal, self._call("intake", "get_case", case_no)):
                raise Forbidden("this case is not in your township")

    @api("GET", "/api/v1/cases/<case_no>/routing")
    def case_routing(self, request, case_no):
        """Every routing of the case: level, mechanism, unit, mediators, reasons, how it ended."""
        principal = self._authenticate(request)
        if principal.role not in ROUTING_READERS:
            raise Forbidden("staff only")
        self._require_read(principal, case_no)
        return self._call("routing", "case_routing", case_no)

    # --- classification ---------------------------------------------------------------------------

    @api("POST", "/api/v1/classify")
    def classify(self, request):
        """{"text", "title"?, "channel"?, "township"?, "village"?, "people_count"?} -> what `lanling classify` says."""
        self._authenticate(request)
        return self._call("routing", "classify", read_json(request))

    # --- roster edits -----------------------------------------------------------------------------

    @api("POST", "/api/v1/mediators")
    def create_mediator(self, request):
        return self._edit(request, "mediators", "create")

    @api("PATCH", "/api/v1/mediators/<mediator_id>")
    def update_mediator(self, request, mediator_id):
        return self._edit(request, "mediators", "update", mediator_id)

    @api("POST", "/api/v1/mediators/<mediator_id>/deactivate")
    def deactivate_mediator(self, request, mediator_id):
        return self._edit(request, "mediators", "deactivate", mediator_id)

    @api("POST", "/api/v1/grid-workers")
    def create_grid_worker(self, request):
        """A new grid worker for a grid; the grid's current worker is deactivated."""
        return self._edit(request, "grid_workers", "create")

    @api("PATCH", "/api/v1/grid-workers/<worker_id>")
    def update_grid_worker(self, request, worker_id):
        return self._edit(request, "grid_workers", "update", worker_id)

    @api("POST", "/api/v1/units")
    def create_unit(self, request):
        return self._edit(request, "units", "create")

    @api("PATCH", "/api/v1/units/<code>")
    def update_unit(self, request, code):
        return self._edit(request, "units", "update", code)

    @api("GET", "/api/v1/staff")
    def staff(self, request):
        """?role=…&township=… Township heads, county supervisors, receptionists, unit liaisons (contacts masked)."""
        self._editor(request)
        return self._call("routing", "staff", role=request.args.get("role"), township=request.args.get("township"))

    @api("POST", "/api/v1/staff")
    def create_staff(self, request):
        return self._edit(request, "staff", "create")

    @api("PATCH", "/api/v1/staff/<staff_id>")
    def update_staff(self, request, staff_id):
        return self._edit(request, "staff", "update", staff_id)

    @api("POST", "/api/v1/staff/<staff_id>/deactivate")
    def deactivate_staff(self, request, staff_id):
        return self._edit(request, "staff", "deactivate", staff_id)

    @api("GET", "/api/v1/directory/changes")
    def directory_changes(self, request):
        """?kind=mediators&key=MT-005-3&limit=100: who changed the directory, when, why; newest first."""
        self._editor(request)
        try:
            limit = int(request.args.get("limit", 100))
        except ValueError:
            raise Invalid("limit must be a whole number", {"limit": ["a whole number"]}) from None
        return self._call("routing", "directory_changes", kind=request.args.get("kind"),
                          key=request.args.get("key"), limit=limit)

    def _editor(self, request) -> auth.Principal:
        principal = self._authenticate(request)
        if principal.role not in EDITORS:
            raise Forbidden("only county supervisors and township heads maintain the directory")
        return principal

    def _edit(self, request, kind: str, action: str, key: str | None = None):
        principal = self._editor(request)
        body = read_json(request) if action != "deactivate" or request.get_data(cache=True) else {}
        reason = body.pop("reason", None) if isinstance(body, dict) else None
        answer = self._call("routing", "edit_directory", actor_of(principal), kind, action, key,
                            None if action == "deactivate" else body, reason)
        answer["accounts"] = self._sync_accounts(answer.get("accounts") or [])
        return (201 if action == "create" else 200), answer

    def _sync_accounts(self, accounts: list[dict]) -> list[dict]:
        """Create or update the identities of the people an edit touched (gateway's own table)."""
        if not accounts:
            return []
        usernames = [account["username"] for account in accounts]
        with self.db.reading() as session:
            known = set(session.scalars(select(StaffAccount.username).where(StaffAccount.username.in_(usernames))))
        password_hash = None
        if any(a["active"] and a["username"] not in known for a in accounts):  # bcrypt is slow: off the hub
            password_hash = tpool.execute(auth.hash_password, settings.secret("LANLING_STAFF_INITIAL_PASSWORD"))
        synced = []
        with self.db.transaction() as uow:
            for account in accounts:
                row = uow.session.get(StaffAccount, account["username"])
                if row is None and (not account["active"] or password_hash is None):
                    continue
                state = "updated"
                if row is None:
                    row = StaffAccount(username=account["username"], password_hash=password_hash,
                                       must_change_password=True, created_at=uow.now)
                    uow.session.add(row)
                    state = "created"
                row.role, row.directory_id, row.township = account["role"], account["directory_id"], account["township"]
                row.display_name, row.active = account["display_name"], account["active"]
                synced.append({"username": account["username"], "role": account["role"],
                               "active": account["active"], "account": state})
        return synced


# --- the OpenAPI description of these endpoints and of api_reference.py's ---------------------------


def _operation(summary: str, errors=(400, 401, 403, 503), *, body: dict | None = None, query=(), path=(),
               auth=("apiKey", "bearer"), ok: str = "200") -> dict:
    operation = {
        "summary": summary,
        "security": [{scheme: []} for scheme in auth],
        "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path]
        + [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in query],
        "responses": {ok: {"description": "ok"}, **{str(code): {"description": "error", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}} for code in errors}},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


def _object(**properties) -> dict:
    return {"type": "object", "properties": {name: {"type": kind} for name, kind in properties.items()}}


def openapi_paths() -> dict[str, dict]:
    edit = _object(reason="string")
    return {
        "/api/v1/reference/townships": {"get": _operation("The 18 townships and streets: code, name, centre")},
        "/api/v1/reference/villages": {"get": _operation("Villages, by township", query=("township",))},
        "/api/v1/reference/grids": {"get": _operation(
            "Grids with their code and grid worker's id, by township or village", query=("township", "village"))},
        "/api/v1/reference/centres": {"get": _operation("Mediation centres (code, name) and the county rooms")},
        "/api/v1/reference/units": {"get": _operation("Units and the dispute types they own (归口) or join (联动)")},
        "/api/v1/mediators": {
            "get": _operation("The published roster (超市), no phones",
                              query=("specialty", "level", "township", "village", "available")),
            "post": _operation("Add a mediator (county supervisor; township head in their township)",
                               (400, 401, 403, 409, 503), body=_object(
                                   name="string", phone="string", level="string", township="string",
                                   village="string", room="string", specialties="array", full_time="boolean",
                                   capacity="integer", recusal_villages="array", background="string"),
                               auth=("bearer",), ok="201")},
        "/api/v1/mediators/{mediator_id}": {
            "get": _operation("One mediator of the roster", (401, 404, 503), path=("mediator_id",)),
            "patch": _operation("Change a mediator (only the fields given)", (400, 401, 403, 404, 503),
                                body=_object(), path=("mediator_id",), auth=("bearer",))},
        "/api/v1/mediators/{mediator_id}/deactivate": {"post": _operation(
            "Deactivate a mediator, with a reason", (400, 401, 403, 404, 503), body=edit, path=("mediator_id",),
            auth=("bearer",))},
        "/api/v1/grid-workers": {"post": _operation(
            "A new grid worker for a grid; the grid's current worker is deactivated", (400, 401, 403, 503),
            body=_object(grid="string", name="string", phone="string"), auth=("bearer",), ok="201")},
        "/api/v1/grid-workers/{worker_id}": {"patch": _operation(
            "Change a grid worker's name or phone", (400, 401, 403, 404, 503), body=_object(), path=("worker_id",),
            auth=("bearer",))},
        "/api/v1/units": {"post": _operation("Add a unit", (400, 401, 403, 409, 503), body=_object(
            code="string", name="string", kind="string", dispute_types="array", co_handles="array",
            gov_categories="array", phone="string"), auth=("bearer",), ok="201")},
        "/api/v1/units/{code}": {"patch": _operation("Change a unit; a dispute type has one owner",
                                                     (400, 401, 403, 404, 409, 503), body=_object(), path=("code",),
                                                     auth=("bearer",))},
        "/api/v1/staff": {
            "get": _operation("Township heads, county supervisors, receptionists, unit liaisons (masked)",
                              query=("role", "township"), auth=("bearer",)),
            "post": _operation("Add a staff member", (400, 401, 403, 503), body=_object(
                role="string", name="string", phone="string", email="string", township="string", centre="string",
                unit="string"), auth=("bearer",), ok="201")},
        "/api/v1/staff/{staff_id}": {"patch": _operation("Change a staff member", (400, 401, 403, 404, 503),
                                                         body=_object(), path=("staff_id",), auth=("bearer",))},
        "/api/v1/staff/{staff_id}/deactivate": {"post": _operation(
            "Deactivate a staff member, with a reason", (400, 401, 403, 404, 503), body=edit, path=("staff_id",),
            auth=("bearer",))},
        "/api/v1/directory/changes": {"get": _operation("The audit of directory edits, newest first",
                                                        query=("kind", "key", "limit"), auth=("bearer",))},
        "/api/v1/cases/{case_no}/mediator": {"post": _operation(
            "The parties' choice of mediator(s) (点将, 一对一 or 多对一); 409 names each refused mediator",
            (400, 401, 403, 404, 409, 503), body=_object(mediators="array", mediator="string"), path=("case_no",))},
        "/api/v1/cases/{case_no}/routing": {"get": _operation(
            "Every routing of the case with its reasons (staff)", (401, 403, 404, 503), path=("case_no",))},
        "/api/v1/classify": {"post": _operation(
            "Classify a text and say where it would go, as `lanling classify` does", body=_object(
                text="string", title="string", channel="string", township="string", village="string",
                people_count="integer"))},
    }
