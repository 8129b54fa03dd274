"""Mediation's use cases over its database; no nameko here (service.py is the thin shell).

- events in: `open_case`, `on_routed`, `on_merged`, `on_unmerged`, `on_urgent`, `on_counsellor_assigned`,
  `note` (everything else about a case goes into its timeline);
- staff actions: `act` (the lifecycle table, with refusals mapped to contract errors), `edit_parties`,
  `add_attachment`, `evaluate` (the citizen's rating link);
- the timer: `fire_due` scans cases whose `next_fire_at` has come (FOR UPDATE SKIP LOCKED on
  PostgreSQL) and fires each action once (its key is UNIQUE in timer_firings, written in the same
  transaction as its event);
- queries: `case_view`, `worklist`, `agreement_html`, `rating_link`, `scorecard`, `hot_topics`.
"""
from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from services.common import config, privacy
from services.common.clock import LOCAL_TZ, local
from services.common.db import serialise
from services.contracts.errors import Conflict, Forbidden, Invalid, NotFound
from services.mediation import agreement as agreement_doc
from services.mediation import lifecycle, reports, timers
from services.mediation.lifecycle import Actor, CaseState
from services.mediation.models import (
    Accountability,
    AgreementRecord,
    Attachment,
    CaseHolder,
    CaseRecord,
    EarlyEvent,
    Evaluation,
    MediationSession,
    Party,
    RatingLink,
    Supervision,
    TimelineEntry,
    TimerFiring,
)
from services.mediation.store import dump_state, load_state, to_json
from services.contracts.catalogue import spec
from services.contracts.envelope import Event

SYSTEM = Actor("system")
TIMER = Actor("system", "timer")
TOKEN_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"   # no 0/o, 1/l/i: read aloud or typed from an SMS
TOKEN_LENGTH = 8
RATING_LINK_DAYS = 30
PARTY_ROLES = tuple(agreement_doc.PARTY_ROLES)
EXTRA_ACTIONS = ("mark_judicial_confirmation",)
ACCOUNTABILITY_MEASURES = {"warning": "提醒", "overdue": "约谈提醒", "seriously_overdue": "通报批评"}
REFERRAL_LABELS = {"arbitration": "仲裁", "litigation": "诉讼", "administrative_review": "行政复议"}
ROUTE_SOURCES = ("received", "returned", "escalated", "reopened")


class CaseNotKnownYet(Exception):
    """The case is not in this database (yet); events about it wait for it in EarlyEvent."""


def _process_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- storage --------------------------------------------------------------------
def record(session, case_no, at, event, actor, *, from_status=None, to_status=None, reason=None, detail=None):
    session.add(TimelineEntry(case_no=case_no, at=at, event=event, actor=actor, from_status=from_status,
                              to_status=to_status, reason=reason, detail=to_json(detail or {})))


def get_record(session, case_no: str, *, lock: bool = True) -> CaseRecord:
    """The case row, locked for this transaction on PostgreSQL (the timer then skips it)."""
    rec = session.get(CaseRecord, case_no, with_for_update=lock or None)
    if rec is None:
        raise CaseNotKnownYet(case_no)
    return rec


def fired_keys(session, case_no: str) -> set[str]:
    return set(session.scalars(select(TimerFiring.key).where(TimerFiring.case_no == case_no)))


def schedule_of(state: CaseState) -> list[timers.Action]:
    """Everything the timer will ever do for this case as it stands: deadline ladder + rating follow-up."""
    actions = timers.schedule(state.timer_view())
    if state.status == "resolved" and state.rating is None and not state.review_open and state.finished_at:
        actions += timers.evaluation_actions(state.case_no, state.finished_at, state.redo_count + 1)
    return sorted(actions, key=lambda a: a.fire_at)


def pending_actions(state: CaseState, fired: set[str]) -> list[timers.Action]:
    return [a for a in schedule_of(state) if a.key not in fired]


def save(session, rec: CaseRecord, state: CaseState, now, fired: set[str] | None = None) -> None:
    rec.status, rec.level, rec.mechanism = state.status, state.level, state.mechanism
    rec.township, rec.unit, rec.dispute_type = state.township, state.unit, state.dispute_type
    rec.lead_holder = state.holders[0] if state.holders else None
    rec.next_deadline = state.next_deadline()
    rec.state, rec.updated_at = dump_state(state), now
    if fired is None:
        fired = fired_keys(session, rec.case_no)
    pending = pending_actions(state, fired)
    rec.next_fire_at = pending[0].fire_at if pending else None
    rec.overdue_grade = timers.overdue_grade(state.timer_view(), now)
    held = set(session.scalars(select(CaseHolder.holder_id).where(CaseHolder.case_no == rec.case_no)))
    if held != set(state.holders):
        session.execute(delete(CaseHolder).where(CaseHolder.case_no == rec.case_no))
        session.add_all([CaseHolder(case_no=rec.case_no, holder_id=h) for h in dict.fromkeys(state.holders)])


def _audit(session, audit: lifecycle.AuditRow) -> None:
    record(session, audit.case_no, audit.at, audit.action, audit.actor, from_status=audit.from_status,
           to_status=audit.to_status, reason=audit.reason, detail=audit.detail)


def perform(uow, rec: CaseRecord, action: str, actor: Actor, payload: dict) -> lifecycle.Transition:
    """Apply one lifecycle action: store the new state, the audit row, its record and the outgoing events."""
    before = load_state(rec.state)
    transition = lifecycle.apply(before, action, actor, payload, uow.now)
    state = transition.case
    save(uow.session, rec, state, uow.now)
    _audit(uow.session, transition.audit)
    _store_record(uow, rec, transition, payload)
    for event in transition.events:
        uow.emit(event.name, outgoing(uow, event, rec, state, actor), correlation_id=rec.case_no)
    return transition


def _store_record(uow, rec: CaseRecord, transition: lifecycle.Transition, payload: dict) -> None:
    item = transition.record
    if isinstance(item, lifecycle.Session):
        uow.session.add(MediationSession(case_no=rec.case_no, mode=item.mode, attendees=list(item.attendees),
                                         notes=item.notes, held_at=item.held_at, recorded_by=item.recorded_by,
                                         recorded_at=uow.now))
    elif isinstance(item, lifecycle.Agreement):
        place = payload.get("place")
        uow.session.add(AgreementRecord(case_no=rec.case_no, round=transition.case.redo_count + 1, facts=item.facts,
                                        terms=list(item.terms), place=place if isinstance(place, str) else None,
                                        mediators=list(item.mediators),
                                        judicial_confirmation=item.judicial_confirmation, agreed_at=item.agreed_at))


def _try(uow, rec, action, actor, payload) -> lifecycle.Transition | None:
    """A lifecycle action driven by an event: a refusal is recorded, never retried.

    No savepoint is needed: lifecycle.apply refuses before perform writes anything.
    """
    try:
        return perform(uow, rec, action, actor, payload)
    except lifecycle.Refused as refusal:
        record(uow.session, rec.case_no, uow.now, f"{action}_skipped", actor.label(), reason=refusal.reason)
        return None


# -- events in ------------------------------------------------------------------
def _party_from_person(person: dict, source: str | None, now) -> Party | None:
    if not person or not person.get("name"):
        return None
    role = person.get("role")
    role = role if role in PARTY_ROLES else "applicant"
    return Party(role=role, name=person["name"], phone=person.get("phone"), id_number=person.get("id_number"),
                 address=None, source=source, created_at=now, updated_at=now)


def _add_parties(session, case_no: str, people: list[dict], source: str | None, now) -> int:
    """Parties from an intake message; someone already there (same phone, or same name without one) is skipped."""
    existing = session.scalars(select(Party).where(Party.case_no == case_no)).all()
    phones = {privacy.normalise_phone(p.phone) for p in existing if p.phone}
    names = {p.name for p in existing}
    added = 0
    for person in people:
        party = _party_from_person(person, source, now)
        if party is None:
            continue
        phone = privacy.normalise_phone(party.phone) if party.phone else None
        if (phone and phone in phones) or (not phone and party.name in names):
            continue
        party.case_no = case_no
        session.add(party)
        phones.add(phone) if phone else names.add(party.name)
        added += 1
    return added


def open_case(uow, data: dict) -> None:
    case_no = data["case_no"]
    serialise(uow.session, _case_key(case_no))  # see about_case
    if uow.session.get(CaseRecord, case_no) is not None:
        return
    source = data["source"]
    state = CaseState(case_no=case_no, channel=source["channel"], received_at=data["accepted_at"],
                      township=data.get("township"))
    rec = CaseRecord(case_no=case_no, received_at=data["accepted_at"],
                     context={"people": {}, "complainant": source.get("complainant"), "village": data.get("village"),
                              "parties": data.get("parties") or [], "urgent": bool(data.get("urgent")),
                              "sources": [source["reference"]]})
    save(uow.session, rec, state, uow.now, fired=set())
    uow.session.add(rec)
    uow.session.flush()
    complainant = dict(source["complainant"], role="applicant") if source.get("complainant") else None
    _add_parties(uow.session, case_no, [*(data.get("parties") or []), *([complainant] if complainant else [])],
                 source["reference"], uow.now)
    record(uow.session, case_no, data["accepted_at"], "case_received", "intake", to_status="received",
           detail={"channel": source["channel"], "reference": source["reference"], "urgent": data.get("urgent")})
    if data.get("resolved_on_site"):
        perform(uow, rec, "resolve_on_site", SYSTEM, {"summary": data.get("title") or "网格员现场调解"})
    for early in uow.session.scalars(select(EarlyEvent).where(EarlyEvent.case_no == case_no).order_by(EarlyEvent.id)):
        event = Event(early.event_type, spec(early.event_type).schema().load(early.data), case_no, early.occurred_at,
                      early.producer, spec(early.event_type).version, early.event_id)
        ABOUT_A_CASE[event.type](uow, event)
        uow.session.delete(early)


def about_case(uow, event: Event) -> None:
    """An event about a case; one that arrives before the case itself waits for it (EarlyEvent)
    instead of failing and coming back after a retry delay."""
    case_no = event.correlation_id or event.data.get("case_no")
    if case_no and uow.session.get(CaseRecord, case_no) is None:
        # open_case may be committing the case at this very moment, having already looked for
        # early events: wait for it, then look again, or this event would wait forever
        serialise(uow.session, _case_key(case_no))
    if case_no and uow.session.get(CaseRecord, case_no) is None:
        uow.session.add(EarlyEvent(case_no=case_no, event_id=event.event_id, event_type=event.type,
                                   producer=event.producer, occurred_at=event.occurred_at,
                                   data=spec(event.type).schema().dump(event.data)))
        return
    ABOUT_A_CASE[event.type](uow, event)


def _case_key(case_no: str) -> str:
    return f"mediation.case:{case_no}"


def _remember_people(rec: CaseRecord, refs: list[dict]) -> dict:
    context = dict(rec.context)
    context["people"] = {**context.get("people", {}), **{ref["id"]: dict(ref) for ref in refs if ref}}
    return context


def on_routed(uow, data: dict) -> None:
    """case_routed: route and assign; a later attempt (after a return or an escalation) reassigns."""
    rec = get_record(uow.session, data["case_no"])
    last = rec.context.get("routing", {}).get("attempt", 0)
    state = load_state(rec.state)
    detail = {"level": data["level"], "mechanism": data["mechanism"], "dispute_type": data["dispute_type"],
              "attempt": data["attempt"], "reasons": data["reasons"]}
    chosen = data.get("trigger") == "party_choice" and state.status in ("assigned", "accepted")
    if data["attempt"] <= last or (state.status not in ROUTE_SOURCES and not chosen):
        record(uow.session, rec.case_no, uow.now, "case_routed_ignored", "routing",
               reason=f"attempt {data['attempt']} (last {last}) while {state.status}", detail=detail)
        return
    supervisors = data.get("supervisors") or []
    refs = [*data["mediators"], *([data["unit"]] if data.get("unit") else []), *data.get("co_units", []), *supervisors]
    context = _remember_people(rec, refs)
    context["routing"] = {"signals": data.get("signals", []), "severity": data.get("severity", {}),
                          "attempt": data["attempt"], "joint_plan": data.get("joint_plan")}
    if supervisors:   # absent in older case_routed: keep what we had; notify looks them up itself
        context["supervisors"] = [s["id"] for s in supervisors]
    rec.context = context
    record(uow.session, rec.case_no, uow.now, "case_routed", "routing", detail=detail)
    holders = [m["id"] for m in data["mediators"]] or ([data["unit"]["id"]] if data.get("unit") else [])
    if chosen:
        perform(uow, rec, "choose", SYSTEM, {
            "holders": holders, "level": data["level"], "mechanism": data["mechanism"],
            "unit": data["unit"]["id"] if data.get("unit") else None,
            "co_units": [u["id"] for u in data.get("co_units", [])], "township": data.get("township"),
        })
        _fire_now(uow, rec)
        return
    perform(uow, rec, "route", SYSTEM, {
        "level": data["level"], "mechanism": data["mechanism"],
        "unit": data["unit"]["id"] if data.get("unit") else None,
        "co_units": [u["id"] for u in data.get("co_units", [])],
        "township": data.get("township"), "dispute_type": data["dispute_type"],
        "psych_needed": data.get("psych_needed") and data["attempt"] == 1,
    })
    perform(uow, rec, "assign", SYSTEM, {"holders": holders})
    _fire_now(uow, rec)


def on_merged(uow, data: dict) -> None:
    """case_merged: the new source joins the case; its complainant becomes a party."""
    rec = get_record(uow.session, data["case_no"])
    source = data["source"]
    record(uow.session, rec.case_no, uow.now, "case_merged", "intake",
           detail={"channel": source["channel"], "reference": source["reference"], "score": data["score"],
                   "reasons": data.get("reasons", [])})
    _try(uow, rec, "merge_source", SYSTEM, {"source": f"{source['channel']}:{source['reference']}"})
    complainant = source.get("complainant")
    if complainant:
        _add_parties(uow.session, rec.case_no, [dict(complainant, role="applicant")], source["reference"], uow.now)


def on_unmerged(uow, data: dict) -> None:
    rec = get_record(uow.session, data["case_no"])
    record(uow.session, rec.case_no, uow.now, "case_unmerged", data.get("actor") or "intake",
           reason=privacy.mask_text(data["reason"]),
           detail={"channel": data["channel"], "reference": data["reference"], "new_case_no": data["new_case_no"]})
    _try(uow, rec, "unmerge_source", SYSTEM, {"source": f"{data['channel']}:{data['reference']}"})
    uow.session.execute(delete(Party).where(Party.case_no == rec.case_no, Party.source == data["reference"]))


def on_urgent(uow, data: dict) -> None:
    """case_urgent: the case is major from now on; supervision (督办) opens at once."""
    rec = get_record(uow.session, data["case_no"])
    record(uow.session, rec.case_no, uow.now, "case_urgent", "intake", detail={"signals": data["signals"]})
    if load_state(rec.state).major_since is None:
        _try(uow, rec, "mark_major", SYSTEM, {"reason": "紧急: " + "、".join(data["signals"])})
        _fire_now(uow, rec)


def on_counsellor_assigned(uow, event) -> None:
    rec = get_record(uow.session, event.data["case_no"])
    counsellor = event.data["counsellor"]
    context = _remember_people(rec, [counsellor])
    context["counsellor"] = counsellor["id"]
    rec.context = context
    note(uow, event)


NOTE_FIELDS = ("audience", "channel", "recipient", "attempts", "detail", "event_type", "reason", "score",
               "offer_id", "expires_at", "urgent", "kind", "outcome", "at", "counsellor_id")


def note(uow, event) -> None:
    """An event about the case from another service, kept in the timeline."""
    data = event.data
    if not data.get("case_no"):
        return
    get_record(uow.session, data["case_no"], lock=False)
    detail = {k: v for k, v in data.items() if k in NOTE_FIELDS}
    if isinstance(data.get("counsellor"), dict):
        detail["counsellor"] = {"id": data["counsellor"]["id"], "name": data["counsellor"].get("name")}
    if "reason" in detail:
        detail["reason"] = privacy.mask_text(detail["reason"])
    record(uow.session, data["case_no"], event.occurred_at, event.type, event.producer, detail=detail)


ABOUT_A_CASE = {
    "case_routed": lambda uow, e: on_routed(uow, e.data),
    "case_merged": lambda uow, e: on_merged(uow, e.data),
    "case_unmerged": lambda uow, e: on_unmerged(uow, e.data),
    "case_urgent": lambda uow, e: on_urgent(uow, e.data),
    "counsellor_assigned": on_counsellor_assigned,
    "counsellor_offered": note,
    "psych_unmatched": note,
    "psych_session_recorded": note,
    "notification_sent": note,
    "notification_failed": note,
}


# -- events out -----------------------------------------------------------------
def _ref(rec: CaseRecord, i: str | None) -> dict | None:
    if i is None:
        return None
    known = rec.context.get("people", {}).get(i) or {"id": i}
    return {k: v for k, v in known.items() if k in ("id", "name", "role", "level", "township", "phone", "email")}


def _people(rec: CaseRecord, ids) -> list[dict]:
    return [_ref(rec, i) for i in ids if i]


def supervisors_of(rec: CaseRecord) -> list[dict]:
    return _people(rec, rec.context.get("supervisors", []))


def _facts(rec: CaseRecord, state: CaseState) -> dict:
    return {
        "case_no": rec.case_no, "level": state.level, "mechanism": state.mechanism, "township": state.township,
        "dispute_type": state.dispute_type, "status": state.status, "assignees": _people(rec, state.holders),
        "supervisors": supervisors_of(rec), "unit": _ref(rec, state.unit),
    }


def public_url() -> str:
    return (config.get("LANLING_PUBLIC_URL") or f"http://{config.get('GATEWAY_ADDRESS')}").rstrip("/")


def rating_url(token: str) -> str:
    return f"{public_url()}/r/{token}"


def _new_rating_link(uow, case_no: str, round_no: int) -> str:
    existing = uow.session.scalar(select(RatingLink).where(RatingLink.case_no == case_no, RatingLink.round == round_no))
    if existing is not None:
        return existing.token
    token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
    uow.session.add(RatingLink(token=token, case_no=case_no, round=round_no, created_at=uow.now,
                               expires_at=uow.now + timedelta(days=RATING_LINK_DAYS)))
    return token


def _reply(state: CaseState, payload: dict) -> str:
    """The short reply each source is owed (masked; intake forwards it to the source system)."""
    outcome = payload.get("outcome") or state.outcome
    if outcome == "resolved_on_site":
        return "您反映的纠纷已由网格员现场调解化解。"
    if outcome == "referred":
        return f"经调解未能达成协议, 已依法引导通过{REFERRAL_LABELS.get(state.referral_target, '法定')}途径解决。"
    return "您反映的纠纷经人民调解, 当事人已达成调解协议。"


def outgoing(uow, event: lifecycle.DomainEvent, rec: CaseRecord, state: CaseState, actor: Actor) -> dict:
    """The contract payload of a lifecycle event (services/contracts/mediation.py), with the people it concerns."""
    p = event.payload
    facts = _facts(rec, state)
    complainant = rec.context.get("complainant")
    attempt = rec.context.get("routing", {}).get("attempt")
    name = event.name
    if name == "case_assigned":
        return {**facts, "sign_off_deadline": p.get("sign_off_due"), "handling_deadline": p["handling_due"],
                "deadline": state.next_deadline(), "reason": p.get("reason"), "limits": p.get("limits") or {},
                "complainant": complainant, "urgent": state.major_since is not None}
    if name == "case_accepted":
        return {**facts, "accepted_by": _ref(rec, actor.id) or {"id": actor.label()}, "late": p["late"],
                "handling_deadline": p.get("handling_due"), "complainant": complainant}
    if name == "assignment_returned":
        return {**facts, "returned_by": actor.label(), "exclude_mediators": p["exclude_holders"],
                "reason": p["reason"], "attempt": attempt}
    if name == "escalation_requested":
        exclude = list(dict.fromkeys([*p["previous_holders"], *state.returned_by]))
        return {**facts, "from_level": p["from_level"], "exclude_mediators": exclude, "reason": p["reason"],
                "failed": p["failed"], "requested_by": actor.label(), "attempt": attempt}
    if name == "psych_requested":
        routing = rec.context.get("routing", {})
        return {
            "case_no": rec.case_no, "urgent": bool(p.get("urgent")), "reason": p.get("need") or "routing",
            "dispute_type": state.dispute_type, "township": state.township, "village": rec.context.get("village"),
            "risk_signals": [s for s, on in routing.get("severity", {}).items() if on is True],
            "consent": p.get("consent") or "unknown", "parties": rec.context.get("parties") or [],
        }
    if name == "extension_requested":
        return {**facts, "requested_by": _ref(rec, actor.id), "reason": p["reason"],
                "handling_deadline": p["handling_due"], "extension": p["extension"],
                "approver_role": p["approver_role"]}
    if name == "extension_decided":
        return {**facts, "approved": p["approved"], "decided_by": _ref(rec, actor.id), "reason": p.get("reason"),
                "handling_deadline": p["handling_due"], "deadline": state.next_deadline()}
    if name == "case_resolved":
        data = {**facts, "outcome": p["outcome"], "summary": p.get("summary") or _reply(state, p),
                "resolved_at": p["at"], "mediator": _ref(rec, state.holders[0]) if state.holders else None,
                "complainant": complainant, "judicial_confirmation": bool(p.get("judicial_confirmation")),
                "redo_count": state.redo_count}
        if p["outcome"] == "resolved":
            token = _new_rating_link(uow, rec.case_no, state.redo_count + 1)
            data.update(rating_token=token, rating_url=rating_url(token))
        return data
    if name == "case_evaluated":
        return {**facts, "rating": p["rating"], "comment": p.get("comment"), "review": p["review"]}
    if name == "case_closed":
        return {**facts, "outcome": p.get("outcome") or state.outcome or "closed", "summary": _reply(state, p),
                "closed_at": p["at"], "complainant": complainant, "rating": state.rating,
                "referral_target": state.referral_target, "reason": p.get("review") or p.get("reason")}
    raise NotImplementedError(f"mediation does not publish {name}")


# -- staff actions --------------------------------------------------------------
def actor_from(data: dict) -> Actor:
    return Actor(role=data.get("role") or "", id=data.get("id"), township=data.get("township"),
                 case_no=data.get("case_no"))


def _payload(action: str, payload: dict) -> dict:
    payload = dict(payload or {})
    if isinstance(payload.get("held_at"), str):
        try:
            payload["held_at"] = datetime.fromisoformat(payload["held_at"])
        except ValueError:
            raise Invalid("held_at must be ISO 8601 with an offset", {"held_at": ["ISO 8601 with offset"]}) from None
    return payload


def refusal(exc: lifecycle.Refused):
    if isinstance(exc, lifecycle.Forbidden):
        return Forbidden(exc.reason)
    if isinstance(exc, lifecycle.InvalidTransition):
        return Conflict(exc.reason)
    return Invalid(exc.reason, exc.fields)


def _case(session, case_no: str, lock: bool = True) -> CaseRecord:
    try:
        return get_record(session, case_no, lock=lock)
    except CaseNotKnownYet:
        raise NotFound(f"no case {case_no}") from None


def _require_scope(rec: CaseRecord, actor: Actor) -> CaseState:
    state = load_state(rec.state)
    if actor.role not in lifecycle.STAFF_ROLES:
        raise Forbidden(f"角色 {actor.role or '(无)'} 不能办理案件")
    reason = lifecycle.in_scope(state, actor)
    if reason:
        raise Forbidden(reason)
    return state


def act(uow, case_no: str, action: str, actor_data: dict, payload: dict) -> dict:
    """A staff action (POST /cases/{case_no}/actions/{action}); refusals as 403/409/400."""
    actor = actor_from(actor_data)
    rec = _case(uow.session, case_no)
    if action == "mark_judicial_confirmation":
        return _mark_judicial_confirmation(uow, rec, actor, payload or {})
    if action not in lifecycle.STAFF_ACTIONS:
        raise NotFound(f"unknown action {action!r}",
                       {"action": [f"one of {', '.join(lifecycle.STAFF_ACTIONS + EXTRA_ACTIONS)}"]})
    try:
        transition = perform(uow, rec, action, actor, _payload(action, payload))
        if action == "reopen":   # back to whoever held it, unless a new holder is named
            holders = (payload or {}).get("holders") or list(transition.case.holders)
            if holders:
                perform(uow, rec, "assign", SYSTEM, {"holders": holders})
    except lifecycle.Refused as exc:
        raise refusal(exc) from None
    _fire_now(uow, rec)
    state = load_state(rec.state)
    return {"case_no": case_no, "status": state.status, "action": action,
            "deadline": _iso(state.next_deadline()), "holders": list(state.holders)}


def _mark_judicial_confirmation(uow, rec: CaseRecord, actor: Actor, payload: dict) -> dict:
    state = _require_scope(rec, actor)
    latest = uow.session.scalar(select(AgreementRecord).where(AgreementRecord.case_no == rec.case_no)
                                .order_by(AgreementRecord.round.desc()).limit(1))
    if latest is None or state.status not in ("resolved", "closed"):
        raise Conflict("只有已达成调解协议的案件可以申请司法确认")
    wanted = bool(payload.get("judicial_confirmation", True))
    latest.judicial_confirmation = wanted
    record(uow.session, rec.case_no, uow.now, "mark_judicial_confirmation", actor.label(),
           from_status=state.status, to_status=state.status, detail={"judicial_confirmation": wanted})
    return {"case_no": rec.case_no, "status": state.status, "judicial_confirmation": wanted}


def evaluate(uow, case_no: str, token: str, rating: str, comment: str | None, via: str = "link") -> dict:
    """The citizen's rating with the token of their rating link."""
    link = uow.session.get(RatingLink, token or "")
    if link is None or link.case_no != case_no:
        raise Forbidden("评价链接无效")
    if link.used_at is not None:
        raise Conflict("该评价链接已使用")
    if link.expires_at < uow.now:
        raise Forbidden("评价链接已过期")
    rec = _case(uow.session, case_no)
    state = load_state(rec.state)
    if link.round != state.redo_count + 1:
        raise Conflict("该评价链接对应的办理结果已更新")
    try:
        perform(uow, rec, "evaluate", Actor("citizen", case_no=case_no), {"rating": rating, "comment": comment})
    except lifecycle.Refused as exc:
        raise refusal(exc) from None
    link.used_at = uow.now
    uow.session.add(Evaluation(case_no=case_no, round=link.round, rating=rating, comment=comment or None, via=via,
                               rated_at=uow.now))
    state = load_state(rec.state)
    return {"case_no": case_no, "status": state.status, "rating": rating, "review": state.review_open}


def rating_link(session, token: str, now) -> dict:
    link = session.get(RatingLink, token or "")
    if link is None:
        raise NotFound("评价链接无效")
    rec = session.get(CaseRecord, link.case_no)
    state = load_state(rec.state)
    current = link.round == state.redo_count + 1
    return {"case_no": link.case_no, "status": state.status, "dispute_type": state.dispute_type,
            "used": link.used_at is not None, "expired": link.expires_at < now,
            "may_rate": current and link.used_at is None and link.expires_at >= now and state.status == "resolved"
            and state.rating is None and not state.review_open,
            "expires_at": _iso(link.expires_at), "ratings": list(lifecycle.RATINGS)}


# -- parties and attachments ----------------------------------------------------
def _party_view(party: Party) -> dict:
    return {"id": party.id, "role": party.role, "name": privacy.mask_name(party.name),
            "phone": privacy.mask_phone(party.phone), "id_number": privacy.mask_id_number(party.id_number),
            "address": "(已隐藏)" if party.address else None, "source": party.source}


def edit_parties(uow, case_no: str, actor_data: dict, parties: list) -> list[dict]:
    """Replace the case's parties: an item with `id` updates that party (absent fields are kept),
    one without adds a party, and a party not listed is removed."""
    rec = _case(uow.session, case_no)
    _require_scope(rec, actor_from(actor_data))
    if not isinstance(parties, list):
        raise Invalid("parties must be a list", {"parties": ["a list of parties"]})
    existing = {p.id: p for p in uow.session.scalars(select(Party).where(Party.case_no == case_no))}
    errors: dict[str, list[str]] = {}
    kept: set[int] = set()
    for i, item in enumerate(parties):
        if not isinstance(item, dict):
            errors[f"parties.{i}"] = ["an object"]
            continue
        party = existing.get(item.get("id")) if item.get("id") is not None else None
        if item.get("id") is not None and party is None:
            errors[f"parties.{i}.id"] = ["no such party in this case"]
            continue
        role = item.get("role", party.role if party else None)
        name = item.get("name", party.name if party else None)
        if role not in PARTY_ROLES:
            errors[f"parties.{i}.role"] = [f"one of {', '.join(PARTY_ROLES)}"]
        if not isinstance(name, str) or not name.strip():
            errors[f"parties.{i}.name"] = ["required"]
        if errors:
            continue
        if party is None:
            party = Party(case_no=case_no, source=f"staff:{actor_data.get('id')}", created_at=uow.now, name=name)
            uow.session.add(party)
        party.role, party.name, party.updated_at = role, name.strip(), uow.now
        for field in ("phone", "id_number", "address"):
            if field in item:
                party.__setattr__(field, item[field] or None)
        if party.id is not None:
            kept.add(party.id)
    if errors:
        raise Invalid("some parties are invalid", errors)
    removed = [pid for pid in existing if pid not in kept]
    for pid in removed:
        uow.session.delete(existing[pid])
    status = rec.status
    record(uow.session, case_no, uow.now, "parties_edited", actor_from(actor_data).label(), from_status=status,
           to_status=status, detail={"count": len(parties), "removed": len(removed)})
    uow.session.flush()
    return [_party_view(p) for p in uow.session.scalars(select(Party).where(Party.case_no == case_no)
                                                         .order_by(Party.id))]


def check_attachment_scope(session, case_no: str, actor_data: dict) -> None:
    _require_scope(_case(session, case_no, lock=False), actor_from(actor_data))


def add_attachment(uow, case_no: str, actor_data: dict, kind: str, filename: str, content_type: str,
                   size: int, sha256: str, storage_key: str) -> dict:
    rec = _case(uow.session, case_no)
    actor = actor_from(actor_data)
    _require_scope(rec, actor)
    row = Attachment(case_no=case_no, kind=kind, filename=filename, content_type=content_type, size=size,
                     sha256=sha256, storage_key=storage_key, uploaded_by=actor.label(), uploaded_at=uow.now)
    uow.session.add(row)
    uow.session.flush()
    record(uow.session, case_no, uow.now, "attachment_added", actor.label(), from_status=rec.status,
           to_status=rec.status, detail={"id": row.id, "kind": kind, "content_type": content_type, "size": size})
    return _attachment_view(row)


def _attachment_view(row: Attachment) -> dict:
    return {"id": row.id, "kind": row.kind, "filename": row.filename, "content_type": row.content_type,
            "size": row.size, "sha256": row.sha256, "uploaded_by": row.uploaded_by,
            "uploaded_at": _iso(row.uploaded_at)}


def attachment(session, case_no: str, attachment_id: int) -> Attachment:
    row = session.get(Attachment, attachment_id)
    if row is None or row.case_no != case_no:
        raise NotFound(f"no attachment {attachment_id} in case {case_no}")
    return row


# -- the timer ------------------------------------------------------------------
def fire_due(uow, limit: int = 50) -> int:
    """Fire what is due on up to `limit` cases; returns how many cases it took (call again while == limit).

    On PostgreSQL the rows are locked with SKIP LOCKED, so two replicas take different cases; the
    UNIQUE key of each firing, in the same transaction as its event, is the last guard.
    """
    query = (select(CaseRecord).where(CaseRecord.next_fire_at <= uow.now)
             .order_by(CaseRecord.next_fire_at).limit(limit))
    if uow.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    cases = uow.session.scalars(query).all()
    for rec in cases:
        fire_case(uow, rec)
    return len(cases)


def _fire_now(uow, rec: CaseRecord) -> None:
    if rec.next_fire_at is not None and rec.next_fire_at <= uow.now:
        fire_case(uow, rec)


def fire_case(uow, rec: CaseRecord) -> list[str]:
    """Fire every due action of one case, oldest first; each once (its key is stored)."""
    fired = fired_keys(uow.session, rec.case_no)
    done = []
    while True:
        state = load_state(rec.state)
        due = [a for a in pending_actions(state, fired) if a.fire_at <= uow.now]
        if not due:
            break
        action = due[0]
        uow.session.add(TimerFiring(key=action.key, case_no=rec.case_no, step=action.step, due_at=action.fire_at,
                                    fired_at=uow.now, fired_by=_process_label()))
        fired.add(action.key)
        _fire(uow, rec, state, action)
        done.append(action.key)
    save(uow.session, rec, load_state(rec.state), uow.now, fired)
    return done


STAGES = {"reminder_before": "before", "reminder_at_deadline": "at"}


def _fire(uow, rec: CaseRecord, state: CaseState, action: timers.Action) -> None:
    p = action.payload
    facts = _facts(rec, state)
    detail: dict[str, Any] = {"step": action.step, "due": action.fire_at, "key": action.key}
    deadline = {"deadline_kind": p.get("deadline"), "deadline": p.get("due_at")}
    if action.step in STAGES:
        data = {**facts, **deadline, "stage": STAGES[action.step]}
    elif action.step in timers.GRADES:
        data = {**facts, **deadline, "grade": action.step}
        detail["grade"] = action.step
    elif action.step == "supervision":
        supervised = facts["assignees"] or ([facts["unit"]] if facts["unit"] else [])
        supervisors = facts["supervisors"]
        row = Supervision(case_no=rec.case_no, reason=p["reason"], deadline_kind=p.get("deadline"),
                          supervisor=_public_ref(supervisors[0]) if supervisors else None,
                          supervised=[s["id"] for s in supervised], opened_at=uow.now)
        uow.session.add(row)
        uow.session.flush()
        data = {**facts, **deadline, "supervisor": supervisors[0] if supervisors else None, "reason": p["reason"],
                "units": supervised, "supervision_id": row.id}
        detail.update(reason=p["reason"], supervision_id=row.id)
    elif action.step == "accountability":
        against = p["against"]
        ref = _ref(rec, against["id"]) or {"id": "unknown"}
        ref = {**ref, "role": ref.get("role") or against["kind"]}
        reason = (f"{'签收' if p.get('deadline') == 'sign_off' else '办理'}期限"
                  f"{local(p['due_at']).strftime('%Y-%m-%d %H:%M')}已过, 达到{p['grade']}")
        row = Accountability(case_no=rec.case_no, against_kind=against["kind"], against_id=against["id"],
                             grade=p["grade"], deadline_kind=p.get("deadline"), reason=reason, recorded_at=uow.now)
        uow.session.add(row)
        uow.session.flush()
        data = {**facts, **deadline, "against": ref, "grade": p["grade"], "reason": reason, "units": [ref],
                "measure": ACCOUNTABILITY_MEASURES.get(p["grade"], "约谈"), "accountability_id": row.id}
        detail.update(against=against, accountability_id=row.id)
    elif action.step == "evaluation_reminder":
        token = _new_rating_link(uow, rec.case_no, p["round"])
        data = {**facts, "rating_token": token, "rating_url": rating_url(token),
                "complainant": rec.context.get("complainant")}
    elif action.step == "evaluation_close":
        record(uow.session, rec.case_no, uow.now, "timer", TIMER.label(), detail=detail)
        _try(uow, rec, "close", TIMER, {"reason": "评价期满未评价, 自动结案"})
        return
    else:
        raise ValueError(f"unknown timer step {action.step}")
    record(uow.session, rec.case_no, uow.now, action.event, TIMER.label(), detail=detail)
    uow.emit(action.event, data, correlation_id=rec.case_no)


def _public_ref(ref: dict) -> dict:
    return {k: ref.get(k) for k in ("id", "name", "role", "level", "township")}


# -- queries --------------------------------------------------------------------
def _iso(value):
    return local(value).isoformat() if value else None


class _Masker:
    """Masks a case's parties' names, phones and ID numbers wherever they appear in free text."""

    def __init__(self, parties: list[Party]):
        self.mask = agreement_doc._masker(tuple(
            agreement_doc.Party(p.role, p.name, p.id_number, p.phone, p.address) for p in parties))

    def __call__(self, text: str | None) -> str | None:
        return self.mask(text) if text else text


def _mask_attendee(mask: _Masker, attendee: str) -> str:
    masked = mask(attendee)
    # a bare name that is not a known party is still a person's name
    return privacy.mask_name(attendee) if masked == attendee and len(attendee) <= 4 else masked


def case_view(session, case_no: str, actor_data: dict | None = None, private: bool = False) -> dict:
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
    parties = session.scalars(select(Party).where(Party.case_no == case_no).order_by(Party.id)).all()
    mask = _Masker(list(parties))
    sessions = session.scalars(select(MediationSession).where(MediationSession.case_no == case_no)
                               .order_by(MediationSession.held_at, MediationSession.id)).all()
    agreements = session.scalars(select(AgreementRecord).where(AgreementRecord.case_no == case_no)
                                 .order_by(AgreementRecord.round)).all()
    view = {
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
        "holders": list(state.holders),
        "past_holders": list(state.returned_by),
        "deadline": _iso(state.next_deadline()),
        "deadlines": {"sign_off": _iso(state.sign_off_due), "handling": _iso(state.handling_due)},
        "overdue_grade": rec.overdue_grade,
        "major": state.major_since is not None,
        "extension": ({"requested_by": state.pending_extension.requested_by,
                       "requested_at": _iso(state.pending_extension.requested_at)}
                      if state.pending_extension else None),
        "extensions_used": state.extensions_used,
        "redo_count": state.redo_count,
        "rating": state.rating,
        "review_open": state.review_open,
        "outcome": state.outcome,
        "referral_target": state.referral_target,
        "counsellor": ref(rec.context["counsellor"]) if rec.context.get("counsellor") else None,
        "parties": [_party_view(p) for p in parties],
        "sessions": [{"id": s.id, "mode": s.mode, "held_at": _iso(s.held_at), "recorded_by": s.recorded_by,
                      "attendees": [_mask_attendee(mask, a) for a in s.attendees],
                      **({"notes": mask(s.notes)} if private else {})} for s in sessions],
        "agreements": [{"round": a.round, "agreed_at": _iso(a.agreed_at), "terms": len(a.terms),
                        "judicial_confirmation": a.judicial_confirmation} for a in agreements],
        "attachments": [_attachment_view(a) for a in session.scalars(
            select(Attachment).where(Attachment.case_no == case_no).order_by(Attachment.id))],
        "supervisions": [{"id": s.id, "reason": s.reason, "deadline_kind": s.deadline_kind,
                          "supervisor": s.supervisor, "opened_at": _iso(s.opened_at)} for s in session.scalars(
            select(Supervision).where(Supervision.case_no == case_no).order_by(Supervision.id))],
        "accountabilities": [{"id": a.id, "against": {"kind": a.against_kind, "id": a.against_id}, "grade": a.grade,
                              "reason": a.reason, "recorded_at": _iso(a.recorded_at)} for a in session.scalars(
            select(Accountability).where(Accountability.case_no == case_no).order_by(Accountability.id))],
        "evaluations": [{"round": e.round, "rating": e.rating, "comment": mask(e.comment),
                         "rated_at": _iso(e.rated_at)} for e in session.scalars(
            select(Evaluation).where(Evaluation.case_no == case_no).order_by(Evaluation.id))],
        "history": [
            {"at": _iso(t.at), "event": t.event, "actor": t.actor, "from": t.from_status, "to": t.to_status,
             "reason": t.reason, "detail": t.detail}
            for t in timeline
        ],
    }
    # 回避: a holder who shares a name with a party may be related to them; staff decide (return or reassign)
    names = {p.name for p in parties}
    view["recusal_warnings"] = [h for h in state.holders if people.get(h, {}).get("name") in names]
    if actor_data:
        actor = actor_from(actor_data)
        view["allowed_actions"] = [a for a in lifecycle.allowed_actions(state, actor)
                                   if a in lifecycle.STAFF_ACTIONS]
    return view


def agreement_html(session, case_no: str, public: bool, places: dict | None = None, round_no: int | None = None) -> str:
    rec = session.get(CaseRecord, case_no)
    if rec is None:
        raise NotFound(f"no case {case_no}")
    query = select(AgreementRecord).where(AgreementRecord.case_no == case_no)
    query = query.where(AgreementRecord.round == round_no) if round_no else query.order_by(AgreementRecord.round.desc())
    row = session.scalars(query.limit(1)).first()
    if row is None:
        raise NotFound(f"case {case_no} has no agreement")
    state = load_state(rec.state)
    parties = session.scalars(select(Party).where(Party.case_no == case_no).order_by(Party.role, Party.id)).all()
    people = rec.context.get("people", {})
    document = agreement_doc.AgreementDocument(
        case_no=case_no, committee=_committee(state, people, places or {}),
        parties=tuple(agreement_doc.Party(p.role, p.name, p.id_number, p.phone, p.address) for p in parties),
        facts=row.facts, terms=tuple(row.terms),
        mediators=tuple(people.get(m, {}).get("name") or m for m in row.mediators),
        agreed_at=row.agreed_at, judicial_confirmation=row.judicial_confirmation, place=row.place)
    return agreement_doc.render_agreement(document, public=public)


def _committee(state: CaseState, people: dict, places: dict) -> str:
    unit = people.get(state.unit or "", {})
    if unit.get("name") and state.mechanism == "specialised":
        return unit["name"]
    if state.level == "county" or not state.township:
        return "兰陵县人民调解委员会"
    return f"兰陵县{places.get(state.township, state.township)}人民调解委员会"


def scope_filter(query, actor: Actor):
    """Limit a query over cases to what this actor may see; Forbidden for roles without a worklist."""
    if actor.role == "county_supervisor":
        return query
    if actor.role == "township_head":
        return query.where(CaseRecord.township == actor.township, CaseRecord.level != "county")
    if actor.role in ("mediator", "grid_worker"):
        held = select(CaseHolder.case_no).where(CaseHolder.holder_id == actor.id)
        return query.where(CaseRecord.case_no.in_(held))
    raise Forbidden(f"角色 {actor.role or '(无)'} 没有案件列表")


def worklist(session, actor_data: dict, filters: dict) -> dict:
    actor = actor_from(actor_data)
    query = scope_filter(select(CaseRecord), actor)
    for name in ("status", "level", "township", "unit"):
        if filters.get(name):
            query = query.where(getattr(CaseRecord, name) == filters[name])
    if filters.get("mediator"):
        query = query.where(CaseRecord.case_no.in_(
            select(CaseHolder.case_no).where(CaseHolder.holder_id == filters["mediator"])))
    grade = filters.get("overdue")
    if grade:
        if grade == "any":
            query = query.where(CaseRecord.overdue_grade.is_not(None))
        elif grade in timers.GRADES:
            query = query.where(CaseRecord.overdue_grade == grade)
        else:
            raise Invalid("unknown overdue grade", {"overdue": [f"one of any, {', '.join(timers.GRADES)}"]})
    if filters.get("from"):
        query = query.where(CaseRecord.received_at >= parse_time(filters["from"], "from"))
    if filters.get("to"):
        query = query.where(CaseRecord.received_at < parse_time(filters["to"], "to"))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page, per_page = filters["page"], filters["per_page"]
    rows = session.scalars(query.order_by(CaseRecord.next_deadline.is_(None), CaseRecord.next_deadline,
                                          CaseRecord.received_at.desc(), CaseRecord.case_no)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    items = []
    for rec in rows:
        state = load_state(rec.state)
        items.append({"case_no": rec.case_no, "status": rec.status, "level": rec.level, "mechanism": rec.mechanism,
                      "township": rec.township, "unit": rec.unit, "dispute_type": rec.dispute_type,
                      "holders": list(state.holders), "deadline": _iso(rec.next_deadline),
                      "overdue_grade": rec.overdue_grade, "major": state.major_since is not None,
                      "received_at": _iso(rec.received_at), "review_open": state.review_open})
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def parse_time(value, name: str) -> datetime:
    """An ISO 8601 date or time from a query string; a date is midnight in Lanling; aware UTC out."""
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 date or time", {name: ["ISO 8601, e.g. 2026-11-01"]}) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL_TZ)
    return parsed


# -- reports --------------------------------------------------------------------
class _Row:
    __slots__ = ("case_no", "at", "action", "detail")

    def __init__(self, entry: TimelineEntry):
        self.case_no, self.at, self.action = entry.case_no, entry.at, entry.event
        detail = dict(entry.detail or {})
        for key in ("sign_off_due", "handling_due"):
            if isinstance(detail.get(key), str):
                detail[key] = datetime.fromisoformat(detail[key])
        self.detail = detail


REPORT_ACTIONS = ("assign", "reassign", "accept", "approve_extension", "evaluate", "redo", *reports.ENDINGS)


def assignment_records(session, start: datetime, end: datetime) -> list[reports.CaseRecord]:
    cohort = select(TimelineEntry.case_no).where(TimelineEntry.event.in_(("assign", "reassign")),
                                                TimelineEntry.at >= start, TimelineEntry.at < end)
    entries = session.scalars(select(TimelineEntry).where(TimelineEntry.case_no.in_(cohort),
                                                          TimelineEntry.event.in_(REPORT_ACTIONS))
                              .order_by(TimelineEntry.case_no, TimelineEntry.at, TimelineEntry.id)).all()
    return reports.records_from_audit(_Row(e) for e in entries)


def scorecard(session, by: str, start: datetime, end: datetime, as_of: datetime, actor_data: dict) -> dict:
    if by not in reports.GROUPINGS:
        raise Invalid("unknown grouping", {"by": [f"one of {', '.join(reports.GROUPINGS)}"]})
    start, end = parse_time(start, "from"), parse_time(end, "to")
    if end <= start:
        raise Invalid("`to` must be after `from`", {"to": ["after from"]})
    actor = actor_from(actor_data)
    records = assignment_records(session, start, end)
    if actor.role == "township_head":
        records = [r for r in records if r.township == actor.township]
    elif actor.role != "county_supervisor":
        raise Forbidden("只有乡镇负责人和县级督导可以查看考核表")
    rows = reports.scorecard(records, by, start, end, as_of)
    labels = _labels(session, {r.case_no for r in records})
    return {
        "by": by, "from": _iso(start), "to": _iso(end), "as_of": _iso(as_of),
        "rows": [{"group": row.group, "label": labels.get(row.group, row.group), "assigned": row.assigned,
                  **{name: {"value": getattr(row, name).value, "numerator": getattr(row, name).numerator,
                            "denominator": getattr(row, name).denominator} for name, _ in reports.RATE_COLUMNS}}
                 for row in rows],
        "csv": reports.scorecard_csv(rows, by, labels).decode("utf-8-sig"),
    }


def _labels(session, case_nos: set[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for rec in session.scalars(select(CaseRecord).where(CaseRecord.case_no.in_(case_nos))):
        for i, person in rec.context.get("people", {}).items():
            if person.get("name"):
                labels[i] = person["name"]
    return labels


def hot_topics(session, days: int, now: datetime, top: int = 10) -> dict:
    if not 1 <= days <= 366:
        raise Invalid("days must be between 1 and 366", {"days": ["1..366"]})
    start = now - timedelta(days=days)
    rows = session.execute(select(CaseRecord.case_no, CaseRecord.received_at, CaseRecord.dispute_type,
                                  CaseRecord.township).where(CaseRecord.received_at >= start,
                                                             CaseRecord.received_at < now,
                                                             CaseRecord.dispute_type.is_not(None))).all()
    topics = reports.hot_topics([reports.TopicRecord(r.case_no, r.received_at, r.dispute_type, r.township or "县级")
                                 for r in rows], start, now, top)

    def counts(items):
        return [{"name": c.name, "count": c.count, "share": round(c.share, 4)} for c in items]

    return {"days": days, "from": _iso(start), "to": _iso(now), "cases": topics.cases,
            "dispute_types": counts(topics.dispute_types), "places": counts(topics.places),
            "pairs": counts(topics.pairs), "csv": reports.hot_topics_csv(topics).decode("utf-8-sig")}
