"""Composed views: the case as DESIGN §3 shows it, joined from intake and mediation."""
from __future__ import annotations

from services.gateway.auth import Principal

STAFF_READ_ALL = ("operator", "county_supervisor", "psych_coordinator")


def may_read_case(principal: Principal, intake_view: dict) -> bool:
    if principal.role in STAFF_READ_ALL:
        return True
    if principal.kind == "source":
        return any(s["source_user"] == principal.id for s in intake_view["sources"])
    if principal.kind == "citizen":
        return intake_view["case_no"] in principal.cases
    if principal.role in ("township_head", "receptionist"):
        return principal.township is not None and principal.township == intake_view.get("township")
    if principal.role in ("mediator", "grid_worker", "counsellor"):
        return principal.directory_id in intake_view.get("handlers", [])
    return False


def case_view(intake_view: dict, workflow: dict | None) -> dict:
    """Mediation owns status and history; intake owns the sources. Personal data arrives masked."""
    workflow = workflow or {}
    history = workflow.get("history") or [
        {"at": intake_view["accepted_at"], "event": "case_received", "actor": "intake", "detail": {}}
    ]
    return {
        "case_no": intake_view["case_no"],
        "status": workflow.get("status", "received"),
        "channel": intake_view.get("channel"),
        "township": workflow.get("township") or intake_view.get("township"),
        "urgent": intake_view.get("urgent", False),
        "dispute_type": workflow.get("dispute_type"),
        "level": workflow.get("level"),
        "mechanism": workflow.get("mechanism"),
        "unit": workflow.get("unit"),
        "co_units": workflow.get("co_units", []),
        "mediator": workflow.get("mediator"),
        "mediators": workflow.get("mediators", []),
        "deadline": workflow.get("deadline"),
        "deadlines": workflow.get("deadlines", {}),
        "accepted_at": intake_view["accepted_at"],
        "sources": intake_view["sources"],
        "history": history,
    }
