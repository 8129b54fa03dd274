"""Mediation's use cases over its database; no nameko here (service.py is the thin shell)."""
from __future__ import annotations

from sqlalchemy import select

from services.common.clock import local
from services.contracts.errors import NotFound
from services.mediation import lifecycle
from services.mediation.lifecycle import Actor, CaseState
from services.mediation.models import CaseRecord, TimelineEntry
from services.mediation.store import dump_state, load_state, to_json

SYSTEM = Actor("system")


class CaseNotKnownYet(Exception):
    """An event about a case whose case_received has not been handled yet: retried later."""


# -- storage --------------------------------------------------------------------
def record(session, case_no, at, event, actor, *, from_status=None, to_status=None, reason=None, detail=None):
    session.add(TimelineEntry(case_no=case_no, at=at, event=event, actor=actor, from_status=from_status,
                              to_status=to_status, reason=reason, detail=to_json(detail or {})))


def get_record(session, case_no: str) -> CaseRecord:
    rec = session.get(CaseRecord, case_no)
    if rec is None:
        raise CaseNotKnownYet(case_no)
    return rec


def save(rec: CaseRecord, state: CaseState, now) -> None:
    rec.status, rec.level, rec.mechanism = state.status, state.level, state.mechanism
    rec.township, rec.unit, rec.dispute_type = state.township, state.unit, state.dispute_type
    rec.lead_holder = state.holders[0] if state.holders else None
    rec.next_deadline = state.next_deadline()
    rec.state, rec.updated_at = dump_state(state), now


def perform(uow, rec: CaseRecord, action: str, actor: Actor, payload: dict) -> lifecycle.Transition:
    """Apply one lifecycle action: store the new state, the audit row and the outgoing events."""
    transition = lifecycle.apply(load_state(rec.state), action, actor, payload, uow.now)
    save(rec, transition.case, uow.now)
    audit = transition.audit
    record(uow.session, rec.case_no, audit.at, audit.action, audit.actor, from_status=audit.from_status,
           to_status=audit.to_status, reason=audit.reason, detail=audit.detail)
    for event in transition.events:
        uow.emit(event.name, outgoing(event, rec, transition.case), correlation_id=rec.case_no)
    return transition


# -- events in ------------------------------------------------------------------
def open_case(uow, data: dict) -> None:
    case_no = data["case_no"]
    if uow.session.get(CaseRecord, case_no) is not None:
        return
    source = data["source"]
    state = CaseState(case_no=case_no, channel=source["channel"], received_at=data["accepted_at"],
                      township=data.get("township"))
    rec = CaseRecord(case_no=case_no, received_at=data["accepted_at"],
                     context={"people": {}, "complainant": source.get("complainant"), "village": data.get("village"),
                              "parties": data.get("parties") or []})
    save(rec, state, uow.now)
    uow.session.add(rec)
    record(uow.session, case_no, data["accepted_at"], "case_received", "intake", to_status="received",
           detail={"channel": source["channel"], "reference": source["reference"], "urgent": data.get("urgent")})
    if data.get("resolved_on_site"):
        perform(uow, rec, "resolve_on_site", SYSTEM, {"summary": data.get("title") or "网格员现场调解"})


def on_routed(uow, data: dict) -> None:
    rec = get_record(uow.session, data["case_no"])
    refs = [*data["mediators"], *([data["unit"]] if data.get("unit") else []), *data.get("co_units", [])]
    context = dict(rec.context)
    context["people"] = {**context.get("people", {}), **{ref["id"]: ref for ref in refs}}
    context["routing"] = {"signals": data.get("signals", []), "severity": data.get("severity", {}),
                          "attempt": data["attempt"]}
    rec.context = context
    record(uow.session, rec.case_no, uow.now, "case_routed", "routing",
           detail={"level": data["level"], "mechanism": data["mechanism"], "dispute_type": data["dispute_type"],
                   "reasons": data["reasons"]})
    perform(uow, rec, "route", SYSTEM, {
        "level": data["level"], "mechanism": data["mechanism"],
        "unit": data["unit"]["id"] if data.get("unit") else None,
        "co_units": [u["id"] for u in data.get("co_units", [])],
        "township": data.get("township"), "dispute_type": data["dispute_type"],
        "psych_needed": data.get("psych_needed"),
    })
    holders = [m["id"] for m in data["mediators"]] or ([data["unit"]["id"]] if data.get("unit") else [])
    perform(uow, rec, "assign", SYSTEM, {"holders": holders})


def note(uow, event) -> None:
    """An event about the case from another service, kept in the timeline."""
    data = event.data
    detail = {k: v for k, v in data.items() if k in ("audience", "channel", "recipient", "attempts", "detail",
                                                       "event_type", "reason", "score")}
    record(uow.session, data["case_no"], event.occurred_at, event.type, event.producer, detail=detail)


# -- events out -----------------------------------------------------------------
def _people(rec: CaseRecord, ids) -> list[dict]:
    known = rec.context.get("people", {})
    return [known.get(i) or {"id": i} for i in ids]


def outgoing(event: lifecycle.DomainEvent, rec: CaseRecord, state: CaseState) -> dict:
    """The contract payload of a lifecycle event (DESIGN §2), with the people it concerns."""
    p = event.payload
    complainant = rec.context.get("complainant")
    if event.name == "case_assigned":
        return {
            "case_no": rec.case_no, "level": state.level, "mechanism": state.mechanism,
            "township": state.township, "dispute_type": state.dispute_type,
            "unit": _people(rec, [state.unit])[0] if state.unit else None,
            "assignees": _people(rec, state.holders),
            "sign_off_deadline": state.sign_off_due, "handling_deadline": state.handling_due,
            "complainant": complainant,
        }
    if event.name == "psych_requested":
        routing = rec.context.get("routing", {})
        return {
            "case_no": rec.case_no, "urgent": bool(p.get("urgent")), "reason": p.get("need") or "routing",
            "dispute_type": state.dispute_type, "township": state.township, "village": rec.context.get("village"),
            "risk_signals": [s for s, on in routing.get("severity", {}).items() if on is True],
            "consent": p.get("consent") or "unknown", "parties": rec.context.get("parties") or [],
        }
    raise NotImplementedError(f"mediation does not publish {event.name} yet")


# -- queries --------------------------------------------------------------------
def _iso(value):
    return local(value).isoformat() if value else None


def case_view(session, case_no: str) -> dict:
    rec = session.get(CaseRecord, case_no)
    if rec is None:
        raise NotFound(f"no case {case_no}")
    state = load_state(rec.state)
    people = rec.context.get("people", {})

    def ref(i):
        person = people.get(i, {"id": i})
        return {"id": i, "name": person.get("name"), "level": person.get("level"), "role": person.get("role")}

    mediators = [ref(i) for i in state.holders]
    timeline = session.scalars(select(TimelineEntry).where(TimelineEntry.case_no == case_no)
                               .order_by(TimelineEntry.at, TimelineEntry.id)).all()
    return {
        "case_no": case_no,
        "status": state.status,
        "level": state.level,
        "mechanism": state.mechanism,
        "township": state.township,
        "dispute_type": state.dispute_type,
        "unit": ref(state.unit) if state.unit else None,
        "co_units": [ref(u) for u in state.co_units],
        "mediator": mediators[0] if mediators else None,
        "mediators": mediators,
        "deadline": _iso(state.next_deadline()),
        "deadlines": {"sign_off": _iso(state.sign_off_due), "handling": _iso(state.handling_due)},
        "history": [
            {"at": _iso(t.at), "event": t.event, "actor": t.actor, "from": t.from_status, "to": t.to_status,
             "reason": t.reason, "detail": t.detail}
            for t in timeline
        ],
    }
