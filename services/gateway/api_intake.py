"""Intake's part of the API: submissions from source systems (one door for every channel),
undoing a wrong merge (staff), the citizen lookup 办理回复, and the AsyncAPI document of the
AMQP ingress."""
from __future__ import annotations

import os
from datetime import timedelta, timezone

from services.common import config as settings
from services.common.web import RateLimited, api
from services.contracts.errors import Forbidden, Invalid, NotFound
from services.contracts.intake import CHANNELS
from services.gateway import auth
from services.gateway.asyncapi import asyncapi_document
from services.gateway.base import read_json
from services.gateway.ratelimit import MissLimiter

CITIZEN_TOKEN_TTL = timedelta(minutes=30)
UNMERGE_ROLES_ANYWHERE = ("operator", "county_supervisor")
UNMERGE_ROLES_OWN_TOWNSHIP = ("township_head", "receptionist")
# What a citizen sees of a case's history: these events, in their words; nothing else
# (no staff notes, no reasons, no names of other people).
CITIZEN_EVENTS = {
    "case_received": "已受理",
    "case_merged": "同一事项的其他反映已并入本案",
    "case_routed": "已分流",
    "case_assigned": "已交办",
    "case_accepted": "承办人已签收",
    "mediation_started": "调解中",
    "session_recorded": "已开展调解",
    "escalated": "已上报上级调解组织",
    "escalation_requested": "已上报上级调解组织",
    "case_resolved": "已化解",
    "resolve_on_site": "网格员现场化解",
    "case_closed": "已办结",
    "case_evaluated": "已评价",
}
STATUS_LABELS = {
    "received": "已受理", "routed": "已分流", "assigned": "已交办", "accepted": "已签收", "in_mediation": "调解中",
    "resolved": "已化解", "closed": "已办结", "returned": "重新分派中", "escalated": "已上报", "referred": "已转办",
    "resolved_on_site": "现场化解", "reopened": "重新办理",
}


def _limit(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# One per gateway process, shared by its workers.
LOOKUP_MISSES = MissLimiter(max_misses=_limit("LOOKUP_MAX_MISSES", 5),
                            window=timedelta(seconds=_limit("LOOKUP_WINDOW_SECONDS", 900)))


class IntakeApi:
    @api("POST", "/api/v1/submissions/<channel>")
    def submit(self, request, channel):
        principal = self._authenticate(request)
        if channel not in CHANNELS:
            raise NotFound(f"unknown channel {channel[:40]!r}", {"channel": [f"one of {', '.join(CHANNELS)}"]})
        if not principal.may_submit(channel):
            raise Forbidden(f"{principal.id} may not submit on channel {channel!r}")
        payload = read_json(request)
        answer = self._call("intake", "submit", channel, payload, principal.id)
        created = answer.pop("created")
        return (202 if created else 200), answer

    @api("POST", "/api/v1/cases/<case_no>/sources/<channel>/<path:reference>/unmerge")
    def unmerge(self, request, case_no, channel, reference):
        principal = self._authenticate(request)
        if principal.role not in UNMERGE_ROLES_ANYWHERE + UNMERGE_ROLES_OWN_TOWNSHIP:
            raise Forbidden("only staff of the mediation centres may undo a merge")
        if principal.role in UNMERGE_ROLES_OWN_TOWNSHIP:
            case = self._call("intake", "get_case", case_no)
            if principal.township is None or principal.township != case.get("township"):
                raise Forbidden("you may undo merges only of your township's cases")
        body = read_json(request)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise Invalid("say why the merge was wrong", {"reason": ["is required"]})
        return 202, self._call("intake", "unmerge", case_no, channel, reference, reason.strip()[:500], principal.id)

    @api("POST", "/api/v1/lookup")
    def lookup(self, request):
        """办理回复: case number + phone in the body (never in a URL) -> the case's progress."""
        body = read_json(request)
        case_no, phone = body.get("case_no"), body.get("phone")
        bad = {name: ["required string"] for name, value in (("case_no", case_no), ("phone", phone))
               if not isinstance(value, str) or not value.strip()}
        if bad:
            raise Invalid("send case_no and phone", bad)
        case_no = case_no.strip()[:40]
        now = self._now()
        keys = (f"ip:{request.remote_addr or 'unknown'}", f"case:{case_no}")
        wait = LOOKUP_MISSES.retry_after(keys, now)
        if wait is not None:
            raise RateLimited(wait)
        try:
            own = self._call("intake", "lookup", case_no, phone)
        except NotFound:
            LOOKUP_MISSES.miss(keys, now)
            raise
        try:
            workflow = self._call("mediation", "get_case", case_no)
        except NotFound:
            workflow = None
        principal = auth.Principal(kind="citizen", id=f"citizen:{case_no}", role="citizen", cases=(case_no,))
        token = auth.issue_token(principal, settings.secret("LANLING_TOKEN_SECRET"), now, ttl=CITIZEN_TOKEN_TTL)
        return {
            **citizen_view(own, workflow),
            "token": token,
            "token_expires_at": (now + CITIZEN_TOKEN_TTL).astimezone(timezone.utc).isoformat(),
        }

    @api("GET", "/api/v1/asyncapi.json")
    def asyncapi(self, request):
        return asyncapi_document()


def citizen_view(own: dict, workflow: dict | None) -> dict:
    """What a citizen may see of their case: progress, who handles it, what they are owed."""
    workflow = workflow or {}
    status = workflow.get("status") or ("received" if own["intake_status"] == "open" else own["intake_status"])
    mediator = workflow.get("mediator")
    progress = [{"at": own["accepted_at"], "event": "case_received", "label": CITIZEN_EVENTS["case_received"]}]
    for entry in workflow.get("history") or []:
        label = CITIZEN_EVENTS.get(entry.get("event"))
        if label and entry.get("event") != "case_received":
            progress.append({"at": entry.get("at"), "event": entry["event"], "label": label})
    return {
        "case_no": own["case_no"],
        "status": status,
        "status_label": STATUS_LABELS.get(status, status),
        "accepted_at": own["accepted_at"],
        "title": own["title"],
        "township": workflow.get("township") or own["township"],
        "level": workflow.get("level"),
        "mechanism": workflow.get("mechanism"),
        "mediator": {"name": mediator.get("name"), "level": mediator.get("level")} if mediator else None,
        "deadline": workflow.get("deadline"),
        "reply": own["reply"],
        "finished_at": own["finished_at"],
        "sources": own["sources"],
        "progress": progress,
    }
