"""Cases: the case view, worklists, staff actions, parties, attachments, the agreement, the citizen's rating.

Staff act with their own token; the gateway maps the Principal to the lifecycle's actor and mediation
decides (403 with the reason, 409 not in this state, 400 with the fields). Roles:
  county_supervisor (and the operator key)  every case
  township_head                             cases of their township below county level
  mediator, grid_worker                     cases they hold (directory id)
  unit_liaison                              cases held by their unit (directory id = unit code)
"""
from __future__ import annotations

import base64
import html
import json

from nameko.exceptions import UnknownService
from werkzeug.wrappers import Response

from services.common import config
from services.common.web import ApiEntrypoint, Unavailable, api
from services.contracts.errors import Forbidden, Invalid, NotFound
from services.gateway import views
from services.gateway.auth import Principal
from services.gateway.base import read_json

# how the gateway's staff roles act in mediation's lifecycle
LIFECYCLE_ROLES = {"county_supervisor": "county_supervisor", "township_head": "township_head",
                   "mediator": "mediator", "grid_worker": "grid_worker", "unit_liaison": "mediator"}
HOLDER_ROLES = ("mediator", "grid_worker", "unit_liaison", "counsellor")
WORKFLOW_FIELDS = ("holders", "overdue_grade", "major", "extension", "extensions_used", "redo_count", "rating",
                   "review_open", "outcome", "referral_target", "counsellor", "parties", "sessions", "agreements",
                   "attachments", "supervisions", "accountabilities", "evaluations", "allowed_actions",
                   "recusal_warnings")
WORKLIST_FILTERS = ("status", "level", "township", "unit", "mediator", "overdue", "from", "to")
DEFAULT_ATTACHMENT_MAX = 10 * 1024 * 1024


class UploadEntrypoint(ApiEntrypoint):
    """An API entrypoint that takes a raw file body up to MEDIATION_ATTACHMENT_MAX_BYTES."""

    @property
    def max_body_bytes(self) -> int:
        return config.get_int("MEDIATION_ATTACHMENT_MAX_BYTES", DEFAULT_ATTACHMENT_MAX)


upload = UploadEntrypoint.decorator


def actor_of(principal: Principal) -> dict:
    """The lifecycle actor of a staff principal; Forbidden for anyone else."""
    if principal.is_operator:
        return {"role": "county_supervisor", "id": "operator"}
    role = LIFECYCLE_ROLES.get(principal.role) if principal.kind == "staff" else None
    if role is None:
        raise Forbidden(f"role {principal.role} may not act on cases")
    return {"role": role, "id": principal.directory_id or principal.id, "township": principal.township}


def may_read_workflow(principal: Principal, workflow: dict | None) -> bool:
    """Staff read the cases they hold or held, and township heads the cases of their township."""
    if not workflow or principal.kind != "staff":
        return False
    if principal.role == "township_head":
        return principal.township is not None and principal.township == workflow.get("township")
    if principal.role in HOLDER_ROLES:
        return principal.directory_id in (workflow.get("holders", []) + workflow.get("past_holders", []))
    return False


def in_scope(principal: Principal, workflow: dict) -> bool:
    """May this principal see the case's private parts (full agreement, session notes)?"""
    if principal.is_operator or principal.role == "county_supervisor":
        return True
    if principal.role == "township_head":
        return principal.township == workflow.get("township") and workflow.get("level") != "county"
    return principal.role in HOLDER_ROLES and principal.directory_id in workflow.get("holders", [])


def _int(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a whole number", {name: [f"{low}..{high}"]}) from None
    if not low <= value <= high:
        raise Invalid(f"{name} out of range", {name: [f"{low}..{high}"]})
    return value


def _body_or_empty(request) -> dict:
    return read_json(request) if request.get_data(cache=True) else {}


RATING_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>调解结果评价</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:1em auto;padding:0 1em;line-height:1.6}}
label{{display:block;margin:.4em 0}}textarea{{width:100%;height:5em}}button{{font-size:1.1em;padding:.3em 1.5em}}</style>
</head><body>
<h1>调解结果评价</h1>
<p>案件编号: {case_no}</p>
{body}
<script>
const f=document.getElementById("f");
if(f)f.onsubmit=async e=>{{e.preventDefault();const d=new FormData(f);
const r=await fetch("/api/v1/cases/{case_no}/evaluation",{{method:"POST",headers:{{"Content-Type":"application/json"}},
body:JSON.stringify({{token:"{token}",rating:d.get("rating"),comment:d.get("comment")}})}});
const j=await r.json();document.getElementById("m").textContent=r.ok?"感谢您的评价!":(j.message||"提交失败");
if(r.ok)f.remove();}};
</script></body></html>"""


class CasesApi:
    # -- reading ------------------------------------------------------------
    def _workflow(self, case_no: str, actor: dict | None = None, private: bool = False) -> dict | None:
        try:
            return self._call("mediation", "get_case", case_no, actor, private)
        except NotFound:
            return None

    def _staff_actor(self, principal: Principal) -> dict | None:
        try:
            return actor_of(principal)
        except Forbidden:
            return None

    def _may_read(self, principal: Principal, case_no: str) -> bool:
        """The one rule for reading a case (its view, deliveries, routing): intake knows its sources
        and township, mediation who holds or held it."""
        if principal.role in views.STAFF_READ_ALL:
            return True
        if views.may_read_case(principal, self._call("intake", "get_case", case_no)):
            return True
        if principal.kind != "staff":
            return False
        try:
            workflow = self._workflow(case_no, self._staff_actor(principal))
        except (Unavailable, UnknownService):
            return False   # cannot confirm who holds the case: refuse rather than guess
        return may_read_workflow(principal, workflow)

    def _require_read(self, principal: Principal, case_no: str) -> None:
        if not self._may_read(principal, case_no):
            raise Forbidden("you may not read this case")

    @api("GET", "/api/v1/cases/<case_no>")
    def get_case(self, request, case_no):
        principal = self._authenticate(request)
        intake_view = self._call("intake", "get_case", case_no)
        actor = self._staff_actor(principal)
        workflow = self._workflow(case_no, actor, private=False)
        if not (views.may_read_case(principal, intake_view) or may_read_workflow(principal, workflow)):
            raise Forbidden("you may not read this case")
        if workflow and actor and in_scope(principal, workflow):
            workflow = self._workflow(case_no, actor, private=True)   # with session notes
        view = views.case_view(intake_view, workflow)
        for name in WORKFLOW_FIELDS:
            if workflow and name in workflow:
                view[name] = workflow[name]
        return view

    @api("GET", "/api/v1/cases")
    def list_cases(self, request):
        actor = actor_of(self._authenticate(request))
        filters = {name: request.args.get(name) for name in WORKLIST_FILTERS if request.args.get(name)}
        filters["page"] = _int(request, "page", 1, 1, 100000)
        filters["per_page"] = _int(request, "per_page", 20, 1, 100)
        return self._call("mediation", "worklist", actor, filters)

    # -- acting -------------------------------------------------------------
    @api("POST", "/api/v1/cases/<case_no>/actions/<action>")
    def case_action(self, request, case_no, action):
        actor = actor_of(self._authenticate(request))
        return self._call("mediation", "act", case_no, action, actor, _body_or_empty(request))

    @api("PUT", "/api/v1/cases/<case_no>/parties")
    def edit_parties(self, request, case_no):
        actor = actor_of(self._authenticate(request))
        body = read_json(request)
        return {"parties": self._call("mediation", "edit_parties", case_no, actor, body.get("parties"))}

    @upload("POST", "/api/v1/cases/<case_no>/attachments")
    def add_attachment(self, request, case_no):
        actor = actor_of(self._authenticate(request))
        data = request.get_data(cache=True)
        try:
            answer = self._call("mediation", "add_attachment", case_no, actor, request.args.get("kind", "other"),
                                request.args.get("filename") or "attachment", request.mimetype,
                                base64.b64encode(data).decode("ascii"))
        except Invalid as exc:
            if "content_type" in exc.fields:
                return 415, {"error": "unsupported_media_type", "message": exc.message, "fields": exc.fields}
            raise
        return 201, answer

    @api("GET", "/api/v1/cases/<case_no>/attachments/<int:attachment_id>")
    def get_attachment(self, request, case_no, attachment_id):
        principal = self._authenticate(request)
        actor = actor_of(principal)
        item = self._call("mediation", "get_attachment", case_no, attachment_id, actor)
        self._record_unmasked(principal, request, case_no, f"attachment:{attachment_id}")
        filename = item["filename"].replace('"', "")
        return Response(base64.b64decode(item["data_b64"]), mimetype=item["content_type"], headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(filename)}",
            "X-Content-Type-Options": "nosniff"})

    @api("GET", "/api/v1/cases/<case_no>/agreement")
    def agreement(self, request, case_no):
        """The 调解协议书 as printable HTML: masked unless `version=full` by staff in scope."""
        principal = self._authenticate(request)
        full = request.args.get("version") == "full"
        workflow = self._workflow(case_no)
        if workflow is None:
            raise NotFound(f"no case {case_no}")
        if full and not in_scope(principal, workflow):
            raise Forbidden("only staff handling this case may print the full agreement")
        if not full and not (principal.is_operator or principal.kind in ("staff", "source", "citizen")):
            raise Forbidden("you may not read this agreement")
        places = self._township_names()
        document = self._call("mediation", "agreement", case_no, not full, places)
        if full:
            self._record_unmasked(principal, request, case_no, "agreement_full")
        return Response(document, mimetype="text/html", headers={"Cache-Control": "no-store"})

    def _township_names(self) -> dict:
        try:
            return {t["code"]: t["name"] for t in self._call("routing", "townships")}
        except Exception:  # noqa: BLE001 - names are cosmetic: the code is shown instead
            return {}

    # -- the citizen's rating -----------------------------------------------
    @api("POST", "/api/v1/cases/<case_no>/evaluation")
    def evaluate(self, request, case_no):
        body = read_json(request)
        token = body.get("token") or request.headers.get("X-Rating-Token")
        if not isinstance(token, str) or not token:
            raise Invalid("the token from the rating link is required", {"token": ["required"]})
        comment = body.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise Invalid("comment must be text", {"comment": ["text"]})
        return self._guarded(request, (), lambda: self._call(
            "mediation", "evaluate", case_no, token, body.get("rating"), comment, "link"), (NotFound, Forbidden))

    @api("GET", "/r/<token>")
    def rating_page(self, request, token):
        link = self._guarded(request, (), lambda: self._call("mediation", "rating_link", token), NotFound)
        if "application/json" in request.headers.get("Accept", ""):
            return link
        if link["may_rate"]:
            options = "".join(f'<label><input type="radio" name="rating" value="{r}" required> {r}</label>'
                              for r in link["ratings"])
            body = (f'<form id="f"><p>请对本案的调解结果进行评价:</p>{options}'
                    f'<label>意见 (可选):<textarea name="comment" maxlength="500"></textarea></label>'
                    f'<button type="submit">提交</button></form><p id="m"></p>')
        else:
            body = '<p id="m">该评价链接已使用或已失效, 感谢您的参与。</p>'
        page = RATING_PAGE.format(case_no=html.escape(link["case_no"]), token=html.escape(json.dumps(token)[1:-1]),
                                  body=body)
        return Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
