"""Psych's use cases over its database; no nameko here (service.py is the thin shell).

A case's way through psych (one `requests` row per case; one round of offers per episode):

    psych_requested / case_urgent -> record the request, or merge it into the open one -> advance
    advance: no consent and no emergency -> await_consent
             else offer the best candidate not yet offered this round -> counsellor_offered
             nobody left -> unmatched -> psych_unmatched to the county psych coordinator
    accept -> assigned (counsellor_assigned); decline, or no answer in time (the offer scan) -> advance
    sessions (psych_session_recorded, never the notes) until an outcome closes the case

A closed or unmatched case asked for again opens a new round (episode). Every change is
an audit row (who, what, when, why), including the basis of each offer: the party's
consent, or the emergency and its recorded reason.

Concurrency: every use case locks the case's request row first (`FOR UPDATE` on
PostgreSQL), so replicas handling the same case take turns; the offer scan skips rows
another replica holds (`SKIP LOCKED`). Offering also locks the counsellor's row and
counts their load again, so two cases cannot fill the same last place.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from marshmallow import ValidationError
from sqlalchemy import Integer, cast, func, select

from services.common import privacy
from services.common.clock import local
from services.contracts import psych as contract
from services.contracts.errors import Conflict, Forbidden, Invalid, NotFound
from services.psych import match, offers, roster, sessions
from services.psych.models import AuditEntry, CounsellorRow, Offer, PartyLink, PsychRequest, SessionRow

log = logging.getLogger(__name__)
replace_pool = roster.replace_pool  # `lanling load-reference` (services/bootstrap.py) loads the pool with it

SYSTEM = "psych"
COORDINATORS_PATH = Path(__file__).with_name("reference") / "coordinators.json"
EXPLICIT_CONSENT = ("given", "refused", "withdrawn")
OPEN_STATUSES = ("await_consent", "offered", "assigned")
OVERSIGHT_ROLES = ("operator", "psych_coordinator", "county_supervisor")
MAX_CLAIM_ATTEMPTS = 5


# -- configuration ----------------------------------------------------------------
def triggers() -> dict:
    return match.load_rules_document()["triggers"]


@lru_cache(maxsize=4)
def _read_coordinators(path: str) -> tuple[dict, ...]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return tuple(document["coordinators"])


def coordinators() -> list[dict]:
    """The county psych coordinators (StaffRef shape, with contacts); PSYCH_COORDINATORS_FILE overrides."""
    path = os.environ.get("PSYCH_COORDINATORS_FILE") or str(COORDINATORS_PATH)
    return [{k: c.get(k) for k in ("id", "name", "role", "level", "township", "phone", "email")}
            for c in _read_coordinators(path)]


def staff_accounts() -> list[dict]:
    """Gateway accounts for every counsellor of the sample pool and the coordinators."""
    _townships, records = match.load_reference()
    accounts = [{"username": r["id"].lower(), "role": sessions.COUNSELLOR_ROLE, "directory_id": r["id"],
                 "township": r["township_code"], "display_name": r["name"]} for r in records]
    path = os.environ.get("PSYCH_COORDINATORS_FILE") or str(COORDINATORS_PATH)
    accounts += [{"username": c["username"], "role": sessions.COORDINATOR_ROLE, "directory_id": c["id"],
                  "township": c.get("township"), "display_name": c["name"]} for c in _read_coordinators(path)]
    return accounts


# -- small helpers ----------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return local(value).isoformat() if value else None


def actor_label(actor: Mapping | None) -> str:
    if not actor:
        return SYSTEM
    return f"{actor.get('role')}:{actor.get('directory_id') or actor.get('id')}"


def _load(schema, body) -> dict:
    try:
        return schema().load(body if isinstance(body, Mapping) else {})
    except ValidationError as exc:
        raise Invalid("the request body is invalid", exc.messages) from exc


def _postgres(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_request(session, case_no: str, *, skip_locked: bool = False) -> PsychRequest | None:
    """The case's request, locked for this transaction on PostgreSQL (None if absent or, with
    `skip_locked`, held by another transaction)."""
    query = select(PsychRequest).where(PsychRequest.case_no == case_no).execution_options(populate_existing=True)
    if _postgres(session):
        query = query.with_for_update(skip_locked=skip_locked)
    return session.scalars(query).first()


def _row_id(value) -> int | None:
    """An integer key from a path, or None ("²".isdigit() is true but int() refuses it; a key
    beyond a 32-bit integer would reach PostgreSQL as an error)."""
    text = str(value)
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2**31 else None


def _request_or_404(session, case_no: str) -> PsychRequest:
    request = lock_request(session, case_no)
    if request is None:
        raise NotFound(f"no psych request for case {case_no}")
    return request


def _plain(value):
    return _iso(value) if isinstance(value, datetime) else str(value)


def audit(uow, case_no: str, actor: str, action: str, **detail) -> None:
    detail = {k: v for k, v in detail.items() if v is not None}
    uow.session.add(AuditEntry(case_no=case_no, at=uow.now, actor=actor[:100], action=action,
                               detail=json.loads(json.dumps(detail, ensure_ascii=False, default=_plain))))


def _round(session, request: PsychRequest) -> list[Offer]:
    return list(session.scalars(select(Offer).where(Offer.case_no == request.case_no,
                                                    Offer.episode == request.episode).order_by(Offer.id)))


def _record(offer: Offer) -> offers.OfferRecord:
    return offers.OfferRecord(offer.counsellor_id, offer.offered_at, offer.expires_at, offer.status, offer.answered_at)


def _need_text(profile: Mapping) -> str:
    labels = [match.default_rules().risk_signals[s][0] for s in sorted(profile.get("risk_signals") or ())
              if s in match.default_rules().risk_signals]
    return "；".join(filter(None, [profile.get("dispute_type"), "、".join(labels)]))


def _staff_ref(counsellor: match.Counsellor) -> dict:
    return {"id": counsellor.id, "name": counsellor.name, "role": sessions.COUNSELLOR_ROLE,
            "township": counsellor.township_code, "phone": counsellor.phone}


# -- the case profile ---------------------------------------------------------------
def _party_hashes(data: Mapping) -> set[str]:
    hashes = {h for h in data.get("party_hashes") or () if isinstance(h, str) and h}
    people = list(data.get("parties") or ())
    if data.get("complainant"):
        people.append(data["complainant"])
    for person in people:
        hashes.add(privacy.keyed_hash(person.get("phone"), "phone"))
        hashes.add(privacy.keyed_hash(person.get("id_number"), "id"))
    hashes.discard(None)
    return hashes


def _preferences(profile: dict, preferences: Mapping | None) -> None:
    if not preferences:
        return
    if preferences.get("gender") in match.GENDERS:
        profile["preferred_gender"] = preferences["gender"]
    low, high = preferences.get("age_min"), preferences.get("age_max")
    if low is not None or high is not None:
        profile["preferred_age"] = [low if low is not None else 16, high if high is not None else 100]


def _merge_profile(case_no: str, current: Mapping | None, data: Mapping, risks, urgent: bool) -> dict:
    profile = dict(current or {"case_no": case_no, "dispute_type": "其他", "risk_signals": [], "party_hashes": [],
                               "township_code": triggers()["default_township"], "township_known": False})
    if data.get("dispute_type"):
        profile["dispute_type"] = data["dispute_type"]
    code = roster.township_code(data.get("township"))
    if code:
        profile["township_code"], profile["township_known"] = code, True
    if data.get("village"):
        profile["village"] = data["village"]
    profile["risk_signals"] = sorted(set(profile["risk_signals"]) | set(risks))
    profile["party_hashes"] = sorted(set(profile["party_hashes"]) | _party_hashes(data))
    profile["urgent"] = bool(profile.get("urgent")) or urgent
    _preferences(profile, data.get("preferences"))
    return profile


def _link_parties(session, case_no: str, hashes) -> None:
    known = set(session.scalars(select(PartyLink.party_hash).where(PartyLink.case_no == case_no)))
    for party_hash in set(hashes) - known:
        session.add(PartyLink(party_hash=party_hash, case_no=case_no))


def previous_counsellors(session, request: PsychRequest) -> set[str]:
    """Counsellors who served these parties before (other cases, or earlier rounds of this one)."""
    hashes = request.profile.get("party_hashes") or []
    cases = set(session.scalars(select(PartyLink.case_no).where(PartyLink.party_hash.in_(hashes)))) if hashes else set()
    cases.add(request.case_no)
    served = select(Offer.counsellor_id).where(Offer.case_no.in_(cases), Offer.status == "accepted")
    return set(session.scalars(served))


def case_profile(session, request: PsychRequest) -> match.CaseProfile:
    data = dict(request.profile, urgent=request.urgent)
    data["previous_counsellor_ids"] = previous_counsellors(session, request)
    return match.CaseProfile.from_dict(data)


# -- triggers --------------------------------------------------------------------------
def request_help(uow, data: dict) -> None:
    """psych_requested (from mediation): record or merge the request, then take the next step."""
    consent = data.get("consent") if data.get("consent") in offers.CONSENT_STATES else "pending"
    risks = list(data.get("risk_signals") or ())
    urgent = bool(data.get("urgent"))
    emergency = data.get("emergency_reason")
    flagged = [s for s in risks if s in triggers()["emergency_signals"]]
    if urgent and not emergency and flagged:
        emergency = f"分流识别风险信号：{'、'.join(flagged)}"
    request = receive(uow, data["case_no"], trigger="psych_requested", data=data, risks=risks, urgent=urgent,
                      consent=consent, emergency_reason=emergency, need=privacy.mask_text(data.get("reason")),
                      actor=data.get("requested_by") or "mediation")
    advance(uow, request)


def urgent_case(uow, data: dict) -> None:
    """case_urgent (from intake): an emergency in progress jumps the queue, consent or not."""
    wanted = triggers()["case_urgent"]
    categories = [signal.split(":", 1)[0].strip() for signal in data.get("signals") or ()]
    if not any(c in wanted for c in categories):
        log.info("case_urgent for %s needs no counsellor (signals %s)", data["case_no"], categories)
        return
    risks = sorted({risk for c in categories for risk in wanted.get(c, ())})
    signals = "；".join(privacy.mask_text(s) for s in data["signals"])
    request = receive(uow, data["case_no"], trigger="case_urgent", data=data, risks=risks, urgent=True,
                      consent="pending", emergency_reason=f"受理时识别紧急情况：{signals}"[:300],
                      need=f"紧急：{signals}"[:300], actor="intake")
    advance(uow, request)


def receive(uow, case_no: str, *, trigger: str, data: Mapping, risks, urgent: bool, consent: str,
            emergency_reason: str | None, need: str | None, actor: str) -> PsychRequest:
    session, now = uow.session, uow.now
    request = lock_request(session, case_no)
    if request is None:
        request = PsychRequest(case_no=case_no, profile=_merge_profile(case_no, None, data, risks, urgent),
                               urgent=urgent, consent=consent, emergency_reason=emergency_reason,
                               status="await_consent", requested_at=now, episode=1, triggers=[trigger],
                               need=need, candidates=[], updated_at=now)
        session.add(request)
        audit(uow, case_no, actor, "requested", trigger=trigger, urgent=urgent, consent=consent, need=need,
              emergency_reason=emergency_reason)
    else:
        if request.status in ("unmatched", "closed"):
            new_round(uow, request, actor, f"asked again ({trigger})")
            request.consent = consent
        elif consent in EXPLICIT_CONSENT and consent != request.consent:
            request.consent = consent
        audit(uow, case_no, actor, "request_merged", trigger=trigger, urgent=urgent, consent=request.consent)
        request.profile = _merge_profile(case_no, request.profile, data, risks, urgent)
        request.triggers = [*request.triggers, trigger]
        request.need = request.need or need
        request.emergency_reason = request.emergency_reason or emergency_reason
        if urgent and not request.urgent:
            make_urgent(uow, request, actor)
    _link_parties(session, case_no, request.profile["party_hashes"])
    request.updated_at = now
    return request


def new_round(uow, request: PsychRequest, actor: str, why: str) -> None:
    """A closed or unmatched case starts over: new episode, nobody excluded, no outcome."""
    request.episode += 1
    request.status, request.outcome, request.outcome_at = "await_consent", None, None
    request.counsellor_id, request.assigned_at, request.unmatched_reason = None, None, None
    request.first_offer_at, request.follow_up_due, request.requested_at = None, None, uow.now
    audit(uow, request.case_no, actor, "reopened", episode=request.episode, why=why)


def make_urgent(uow, request: PsychRequest, actor: str) -> None:
    """The case turned urgent: an open offer is kept only if that counsellor can still be there in time."""
    request.urgent = True
    request.profile = dict(request.profile, urgent=True)
    audit(uow, request.case_no, actor, "made_urgent")
    now = uow.now
    pool = roster.load_pool(uow.session)
    for offer in _round(uow.session, request):
        if offer.status != "pending" or offer.expires_at <= now:
            continue
        counsellor = pool.get(offer.counsellor_id)
        failure = match.check(case_profile(uow.session, request), pool, now, counsellor.id)
        if failure is None:
            offer.expires_at = min(offer.expires_at, offers.offer_expiry(now, True))
            offer.urgent = True
            audit(uow, request.case_no, actor, "offer_hastened", offer_id=str(offer.id), expires_at=offer.expires_at)
            _emit_offered(uow, request, offer, counsellor,
                          basis="consent" if request.consent == "given" else "emergency")
        else:
            withdraw(uow, offer, actor, f"案件转为紧急，该咨询师无法及时到场（{match.HARD_CONSTRAINTS[failure]}）")


# -- the next step ------------------------------------------------------------------
def advance(uow, request: PsychRequest, *, actor: str = SYSTEM) -> str:
    """Offer the next candidate, wait, or report no match; returns the action taken."""
    session, now = uow.session, uow.now
    rows = _round(session, request)
    history = [_record(o) for o in rows]
    consent = offers.can_offer(request.consent, request.urgent, request.emergency_reason)
    busy = any(o.status == "accepted" or o.is_open(now) for o in history)
    pool = roster.load_pool(session)
    profile = case_profile(session, request) if consent and not busy else None
    skipped: set[str] = set()
    for _attempt in range(MAX_CLAIM_ATTEMPTS):
        candidates, no_match = [], None
        if profile is not None:
            load = roster.weekly_load(session, now)
            candidates = match.match(profile, pool, now, load=load,
                                     exclude=offers.tried_ids(history) | skipped)
            if not candidates:
                no_match = match.explain_no_match(profile, pool, now, load=load,
                                                  exclude=offers.tried_ids(history) | skipped)
            request.candidates = [c.to_dict() for c in candidates]
        step = offers.next_step(candidates, history, now, urgent=request.urgent, consent=consent,
                                no_match_reason=no_match)
        if step.action != "offer" or _claim(session, pool.get(step.counsellor_id), now):
            break
        skipped.add(step.counsellor_id)  # another case took the last place meanwhile
    else:
        step = offers.next_step([], history, now, urgent=request.urgent, consent=consent,
                                no_match_reason="候选人名额被同时占用，请稍后重试")
    for offer in rows:
        if offer.counsellor_id in step.timed_out and offer.status == "pending":
            offer.status = "timed_out"
            audit(uow, request.case_no, actor, "offer_timed_out", offer_id=str(offer.id),
                  counsellor_id=offer.counsellor_id, expired_at=offer.expires_at)
    if step.action == "offer":
        counsellor = pool.get(step.counsellor_id)
        offer = Offer(case_no=request.case_no, counsellor_id=counsellor.id, offered_at=now,
                      expires_at=step.expires_at, status="pending", score=step.candidate.score,
                      reasons=list(step.candidate.reasons), basis=step.reason[:200], episode=request.episode,
                      urgent=request.urgent)
        _open_offer(uow, request, offer, counsellor, basis=consent.basis, basis_text=step.reason, actor=actor)
    elif step.action == "unmatched" and request.status != "unmatched":
        _unmatched(uow, request, step.reason, tried=len(history), actor=actor)
    elif step.action == "await_consent" and request.status != "await_consent":
        request.status = "await_consent"
        audit(uow, request.case_no, actor, "awaiting_consent", reason=step.reason)
    request.updated_at = now
    return step.action


def _claim(session, counsellor: match.Counsellor, now: datetime) -> bool:
    """Lock the counsellor's row and count their load again: is a place still free?"""
    query = select(CounsellorRow.id).where(CounsellorRow.id == counsellor.id)
    session.execute(query.with_for_update() if _postgres(session) else query)
    return roster.weekly_load(session, now, counsellor.id).get(counsellor.id, 0) < counsellor.weekly_capacity


def _open_offer(uow, request: PsychRequest, offer: Offer, counsellor: match.Counsellor, *, basis: str,
                basis_text: str, actor: str) -> None:
    uow.session.add(offer)
    uow.session.flush()
    request.status = "offered"
    request.first_offer_at = request.first_offer_at or uow.now
    audit(uow, request.case_no, actor, "offered", offer_id=str(offer.id), counsellor_id=counsellor.id,
          basis=basis, basis_text=basis_text, score=offer.score, expires_at=offer.expires_at)
    _emit_offered(uow, request, offer, counsellor, basis=basis)


def _emit_offered(uow, request: PsychRequest, offer: Offer, counsellor: match.Counsellor, *, basis: str) -> None:
    attempt = uow.session.scalar(select(func.count()).where(Offer.case_no == request.case_no,
                                                            Offer.episode == request.episode, Offer.id <= offer.id))
    uow.emit("counsellor_offered", {
        "case_no": request.case_no, "offer_id": str(offer.id), "counsellor": _staff_ref(counsellor),
        "urgent": request.urgent, "expires_at": offer.expires_at, "score": offer.score,
        "reasons": list(offer.reasons or ()), "township": request.profile.get("township_code"),
        "need": _need_text(request.profile), "basis": basis, "attempt": attempt,
    }, correlation_id=request.case_no)


def _unmatched(uow, request: PsychRequest, reason: str, *, tried: int, actor: str) -> None:
    request.status, request.unmatched_reason = "unmatched", reason
    audit(uow, request.case_no, actor, "unmatched", reason=reason, tried=tried)
    staff = coordinators()
    uow.emit("psych_unmatched", {
        "case_no": request.case_no, "reason": reason, "urgent": request.urgent,
        "coordinator": staff[0] if staff else None, "coordinators": staff,
        "township": request.profile.get("township_code"), "need": _need_text(request.profile), "tried": tried,
    }, correlation_id=request.case_no)


def withdraw(uow, offer: Offer, actor: str, why: str) -> None:
    offer.status, offer.answered_at, offer.answer_reason = "withdrawn", uow.now, why[:300]
    audit(uow, offer.case_no, actor, "offer_withdrawn", offer_id=str(offer.id), counsellor_id=offer.counsellor_id,
          why=why)


def _withdraw_open(uow, request: PsychRequest, actor: str, why: str) -> None:
    for offer in _round(uow.session, request):
        if offer.status == "pending":
            withdraw(uow, offer, actor, why)


# -- the offer scan (timer) ------------------------------------------------------------
def expired_cases(session, now: datetime, limit: int = 100) -> list[str]:
    """Cases with an offer unanswered past its time, urgent ones first."""
    urgent = func.max(cast(Offer.urgent, Integer))
    query = (select(Offer.case_no).where(Offer.status == "pending", Offer.expires_at <= now)
             .group_by(Offer.case_no).order_by(urgent.desc(), func.min(Offer.expires_at)).limit(limit))
    return list(session.scalars(query))


def expire_case(uow, case_no: str) -> bool:
    """Time out the case's expired offer and offer the next candidate; False if another replica has it."""
    request = lock_request(uow.session, case_no, skip_locked=True)
    if request is None:
        return False
    if not any(o.status == "pending" and o.expires_at <= uow.now for o in _round(uow.session, request)):
        stale = [o for o in uow.session.scalars(select(Offer).where(Offer.case_no == case_no,
                                                                    Offer.status == "pending",
                                                                    Offer.episode != request.episode))]
        for offer in stale:  # left open by an earlier round: close it quietly
            withdraw(uow, offer, "timer", "上一轮邀请已结束")
        return bool(stale)
    advance(uow, request, actor="timer")
    return True


# -- staff actions ---------------------------------------------------------------------
def _is_counsellor_of(session, request: PsychRequest, counsellor_id: str | None) -> bool:
    if not counsellor_id:
        return False
    return session.scalar(select(func.count()).where(Offer.case_no == request.case_no,
                                                     Offer.counsellor_id == counsellor_id)) > 0


def _may_see_case(session, request: PsychRequest, reader: Mapping) -> bool:
    role = reader.get("role")
    if role in OVERSIGHT_ROLES:
        return True
    return role == sessions.COUNSELLOR_ROLE and _is_counsellor_of(session, request, reader.get("directory_id"))


def record_consent(uow, case_no: str, body: Mapping, actor: Mapping) -> dict:
    """The party's consent as recorded by staff; an emergency reason may be recorded with it."""
    data = _load(contract.ConsentInput, body)
    session = uow.session
    request = _request_or_404(session, case_no)
    label = actor_label(actor)
    if actor.get("role") == sessions.COUNSELLOR_ROLE and not _is_counsellor_of(session, request,
                                                                               actor.get("directory_id")):
        raise Forbidden("only a counsellor offered this case may record the party's consent")
    if request.status == "closed":
        raise Conflict(f"the psych request of {case_no} is closed ({request.outcome})")
    previous = request.consent
    request.consent, request.consent_by, request.consent_at = data["state"], label, uow.now
    if data.get("preferences"):
        profile = dict(request.profile)
        _preferences(profile, data["preferences"])
        request.profile = profile
    audit(uow, case_no, label, "consent_recorded", state=data["state"], previous=previous, note=data.get("note"),
          emergency_reason=data.get("emergency_reason"), preferences=data.get("preferences"))
    if data.get("emergency_reason"):
        request.emergency_reason = data["emergency_reason"]
        if not request.urgent:
            make_urgent(uow, request, label)
    if not offers.can_offer(request.consent, request.urgent, request.emergency_reason):
        _withdraw_open(uow, request, label, offers.CONSENT_REFUSALS.get(request.consent, "当事人未同意"))
    if request.status in ("await_consent", "offered"):
        advance(uow, request, actor=label)
    if _may_see_case(session, request, actor):
        return case_view(session, case_no, actor, uow.now)
    # e.g. the case's mediator: allowed to record consent, not to read the psych record
    return {"case_no": case_no, "status": request.status, "urgent": request.urgent,
            "consent": {"state": request.consent, "by": request.consent_by, "at": _iso(request.consent_at)}}


def answer_offer(uow, offer_id: str, accepted: bool, body: Mapping, actor: Mapping) -> dict:
    """The offered counsellor accepts (counsellor_assigned) or declines (the next one is offered)."""
    data = _load(contract.OfferAnswerInput, body)
    session, now = uow.session, uow.now
    offer = session.get(Offer, key) if (key := _row_id(offer_id)) else None
    if offer is None:
        raise NotFound(f"no offer {offer_id}")
    if actor.get("role") != sessions.COUNSELLOR_ROLE or actor.get("directory_id") != offer.counsellor_id:
        raise Forbidden("only the counsellor offered the case may answer the offer")
    request = lock_request(session, offer.case_no)
    session.refresh(offer)
    wanted = "accepted" if accepted else "declined"
    if offer.status == wanted:  # the same answer again: nothing changes
        return offer_view(offer)
    try:
        answered = offers.record_answer(_record(offer), accepted, now)
    except offers.OfferClosed as exc:
        raise Conflict(f"the offer is no longer open: {exc}") from exc
    offer.status, offer.answered_at, offer.answer_reason = answered.status, now, data.get("reason")
    label = actor_label(actor)
    audit(uow, offer.case_no, label, f"offer_{wanted}", offer_id=str(offer.id), counsellor_id=offer.counsellor_id,
          reason=data.get("reason"))
    if accepted:
        request.status, request.counsellor_id, request.assigned_at = "assigned", offer.counsellor_id, now
        counsellor = roster.load_pool(session).get(offer.counsellor_id)
        ref = _staff_ref(counsellor) if counsellor else {"id": offer.counsellor_id, "role": "counsellor"}
        uow.emit("counsellor_assigned", {"case_no": offer.case_no, "offer_id": str(offer.id), "counsellor": ref,
                                         "urgent": request.urgent, "accepted_at": now},
                 correlation_id=offer.case_no)
    else:
        advance(uow, request, actor=label)
    request.updated_at = now
    return offer_view(offer)


def coordinator_offer(uow, case_no: str, body: Mapping, actor: Mapping) -> dict:
    """The coordinator names a counsellor (hard constraints inactive and conflict still hold), or
    matches again from the top (a new round for an unmatched case)."""
    data = _load(contract.CoordinatorOfferInput, body)
    session, now = uow.session, uow.now
    request = _request_or_404(session, case_no)
    label = actor_label(actor)
    if request.status in ("assigned", "closed"):
        raise Conflict(f"the psych request of {case_no} is {request.status}")
    consent = offers.can_offer(request.consent, request.urgent, request.emergency_reason)
    if not consent:
        raise Conflict(f"no offer may be made: {consent.reason}")
    why = data.get("reason") or "协调员安排"
    if request.status == "unmatched":
        new_round(uow, request, label, why)
    _withdraw_open(uow, request, label, f"协调员重新安排：{why}")
    counsellor_id = data.get("counsellor_id")
    if counsellor_id is None:
        advance(uow, request, actor=label)
        return case_view(session, case_no, actor, now)
    pool = roster.load_pool(session)
    counsellor = pool.get(counsellor_id)
    if counsellor is None:
        raise NotFound(f"no counsellor {counsellor_id}")
    failure = match.check(case_profile(session, request), pool, now, counsellor_id,
                          load=roster.weekly_load(session, now))
    if failure in ("inactive", "conflict"):
        raise Conflict(f"{counsellor_id} cannot take this case: {match.HARD_CONSTRAINTS[failure]}",
                       {"counsellor_id": [match.HARD_CONSTRAINTS[failure]]})
    reasons = [f"协调员指定：{why}"] + ([f"注意：{match.HARD_CONSTRAINTS[failure]}"] if failure else [])
    offer = Offer(case_no=case_no, counsellor_id=counsellor_id, offered_at=now,
                  expires_at=offers.offer_expiry(now, request.urgent), status="pending", score=None,
                  reasons=reasons, basis=f"coordinator: {why}"[:200], episode=request.episode, urgent=request.urgent)
    _open_offer(uow, request, offer, counsellor, basis="coordinator", basis_text=f"{consent.reason}；{why}",
                actor=label)
    return case_view(session, case_no, actor, now)


def _domain_session(row: SessionRow) -> sessions.Session:
    return sessions.Session(row.case_no, row.counsellor_id, row.at, row.kind, row.notes, row.next_follow_up)


def _round_sessions(session, request: PsychRequest) -> list[SessionRow]:
    return list(session.scalars(select(SessionRow).where(SessionRow.case_no == request.case_no,
                                                         SessionRow.episode == request.episode)
                                .order_by(SessionRow.at, SessionRow.id)))


def _assigned_counsellor(actor: Mapping, request: PsychRequest) -> str:
    counsellor_id = actor.get("directory_id")
    if actor.get("role") != sessions.COUNSELLOR_ROLE or request.status not in ("assigned", "closed") \
            or counsellor_id != request.counsellor_id:
        raise Forbidden("only the counsellor assigned to this case may do this")
    return counsellor_id


def record_session(uow, case_no: str, body: Mapping, actor: Mapping) -> dict:
    """A session by the assigned counsellor; psych_session_recorded carries everything but the notes."""
    data = _load(contract.SessionInput, body)
    session, now = uow.session, uow.now
    request = _request_or_404(session, case_no)
    counsellor_id = _assigned_counsellor(actor, request)
    earlier = [_domain_session(r) for r in _round_sessions(session, request)]
    new = sessions.new_session(case_no, counsellor_id, data.get("at") or now, data["kind"], data["notes"],
                               data.get("next_follow_up"))
    problems = sessions.check_session(new, assigned_counsellor_id=request.counsellor_id, earlier=earlier, now=now,
                                      outcome=request.outcome)
    outcome = data.get("outcome")
    if outcome:
        problems.update({"outcome": reasons} if (reasons := sessions.check_outcome(outcome, [*earlier, new])) else {})
    if problems:
        raise Invalid("the session cannot be recorded", problems)
    row = SessionRow(case_no=case_no, episode=request.episode, counsellor_id=counsellor_id, at=new.at,
                     kind=new.kind, notes=new.notes, next_follow_up=new.next_follow_up, outcome=outcome,
                     recorded_at=now)
    session.add(row)
    session.flush()
    request.follow_up_due = sessions.follow_up_due([*earlier, new], outcome)
    label = actor_label(actor)
    audit(uow, case_no, label, "session_recorded", session_id=str(row.id), kind=row.kind, at=row.at,
          outcome=outcome)  # never the notes
    if outcome:
        _close(uow, request, outcome, label)
    uow.emit("psych_session_recorded", {
        "case_no": case_no, "counsellor_id": counsellor_id, "kind": row.kind, "at": row.at, "outcome": outcome,
        "session_id": str(row.id), "next_follow_up": request.follow_up_due,
    }, correlation_id=case_no)
    return _session_public(row) | {"notes": row.notes}  # the writer, who may read them


def record_outcome(uow, case_no: str, body: Mapping, actor: Mapping) -> dict:
    """End the case with an outcome, without a session (declined by the party, lost contact …)."""
    data = _load(contract.OutcomeInput, body)
    session, now = uow.session, uow.now
    request = _request_or_404(session, case_no)
    if actor.get("role") == sessions.COUNSELLOR_ROLE:
        _assigned_counsellor(actor, request)
    elif actor.get("role") not in ("operator", sessions.COORDINATOR_ROLE):
        raise Forbidden("only the assigned counsellor or the psych coordinator may close the case")
    if request.status == "closed":
        raise Conflict(f"the psych request of {case_no} is already closed ({request.outcome})")
    problems = sessions.check_outcome(data["outcome"], [_domain_session(r) for r in _round_sessions(session, request)])
    if problems:
        raise Invalid("the case cannot end with this outcome", {"outcome": problems})
    label = actor_label(actor)
    audit(uow, case_no, label, "outcome_recorded", outcome=data["outcome"], note=data.get("note"))
    _close(uow, request, data["outcome"], label)
    uow.emit("psych_session_recorded", {
        "case_no": case_no, "counsellor_id": request.counsellor_id or actor.get("directory_id") or label,
        "kind": "closure", "at": now, "outcome": data["outcome"],
    }, correlation_id=case_no)
    return case_view(session, case_no, actor, now)


def _close(uow, request: PsychRequest, outcome: str, actor: str) -> None:
    _withdraw_open(uow, request, actor, "案件已结束")
    request.status, request.outcome, request.outcome_at, request.follow_up_due = "closed", outcome, uow.now, None
    request.updated_at = uow.now


# -- the roster -------------------------------------------------------------------------
def create_counsellor(uow, body: Mapping, actor: Mapping) -> dict:
    row = roster.create(uow.session, body, uow.now)
    log.info("counsellor %s created by %s", row.id, actor_label(actor))
    return roster.detail_view(uow.session, row.id, uow.now, reveal_phone=True)


def update_counsellor(uow, counsellor_id: str, changes: Mapping, actor: Mapping) -> dict:
    """Change a record; a counsellor may change only their own availability."""
    if actor.get("role") == sessions.COUNSELLOR_ROLE:
        if actor.get("directory_id") != counsellor_id:
            raise Forbidden("a counsellor may change only their own record")
        others = set(changes) - {"availability"}
        if others:
            raise Forbidden("a counsellor may change only their availability",
                            {name: ["only the coordinator may change this"] for name in others})
    row, changed = roster.update(uow.session, counsellor_id, changes, uow.now)
    if changed and not row.active:
        _release_offers(uow, counsellor_id, actor_label(actor), "咨询师已停用")
    return roster.detail_view(uow.session, counsellor_id, uow.now, reveal_phone=True)


def set_active(uow, counsellor_id: str, active: bool, reason: str | None, actor: Mapping) -> dict:
    """Take a counsellor out of matching (their open offers go to the next candidate) or back in."""
    return update_counsellor(uow, counsellor_id, {"active": active}, actor) | {"reason": reason}


def _release_offers(uow, counsellor_id: str, actor: str, why: str) -> None:
    pending = uow.session.scalars(select(Offer.case_no).where(Offer.counsellor_id == counsellor_id,
                                                              Offer.status == "pending").distinct())
    for case_no in list(pending):
        request = lock_request(uow.session, case_no)
        for offer in _round(uow.session, request):
            if offer.status == "pending" and offer.counsellor_id == counsellor_id:
                withdraw(uow, offer, actor, why)
        advance(uow, request, actor=actor)


def match_preview(session, body: Mapping, now: datetime) -> dict:
    """Ranked candidates for a profile, offering nobody: the coordinator's "who would we ask?"."""
    data = _load(contract.MatchInput, body)
    code = roster.township_code(data["township"])
    problems = {}
    if code is None:
        problems["township"] = ["unknown township code or name"]
    unknown = sorted(set(data["risk_signals"]) - set(match.default_rules().risk_signals))
    if unknown:
        problems["risk_signals"] = [f"unknown: {unknown}; known: {sorted(match.default_rules().risk_signals)}"]
    if problems:
        raise Invalid("the case profile is invalid", problems)
    profile = {"case_no": data.get("case_no") or "preview", "dispute_type": data["dispute_type"],
               "township_code": code, "village": data.get("village"), "risk_signals": data["risk_signals"],
               "urgent": data["urgent"], "party_hashes": sorted(_party_hashes({"parties": data["parties"]})),
               "previous_counsellor_ids": data["previous_counsellor_ids"]}
    _preferences(profile, data["preferences"])
    at = data.get("at") or now
    if abs(at - now) > timedelta(days=366):  # availability and load are weeks around `at`
        raise Invalid("the case profile is invalid", {"at": ["must be within a year of now"]})
    pool = roster.load_pool(session)
    load = roster.weekly_load(session, at)
    candidates = match.match(match.CaseProfile.from_dict(profile), pool, at, load=load, limit=data["limit"])
    names = {t.code: t.name for t in roster.townships()}
    body = {"candidates": [
        c.to_dict() | {"name": pool.get(c.counsellor_id).name, "occupation": pool.get(c.counsellor_id).occupation,
                       "township": names[pool.get(c.counsellor_id).township_code]}
        for c in candidates], "as_of": _iso(at)}
    if not candidates:
        body["no_match_reason"] = match.explain_no_match(match.CaseProfile.from_dict(profile), pool, at, load=load)
    return body


# -- views -------------------------------------------------------------------------------
def offer_view(offer: Offer) -> dict:
    return {"id": str(offer.id), "case_no": offer.case_no, "counsellor_id": offer.counsellor_id,
            "status": offer.status, "urgent": offer.urgent, "offered_at": _iso(offer.offered_at),
            "expires_at": _iso(offer.expires_at), "answered_at": _iso(offer.answered_at), "score": offer.score,
            "reasons": list(offer.reasons or ()), "basis": offer.basis, "answer_reason": offer.answer_reason,
            "episode": offer.episode}


def _session_public(row: SessionRow) -> dict:
    return sessions.public_view(_domain_session(row)) | {"id": str(row.id), "outcome": row.outcome,
                                                         "at": _iso(row.at), "next_follow_up": _iso(row.next_follow_up)}


def case_view(session, case_no: str, reader: Mapping, now: datetime) -> dict:
    """The psych side of a case; a counsellor sees only their own offers. Never the notes."""
    request = session.get(PsychRequest, case_no)
    if request is None:
        raise NotFound(f"no psych request for case {case_no}")
    if not _may_see_case(session, request, reader):
        raise Forbidden("you may not read the psych record of this case")
    oversight = reader.get("role") in OVERSIGHT_ROLES
    all_offers = session.scalars(select(Offer).where(Offer.case_no == case_no).order_by(Offer.id))
    mine = [o for o in all_offers if oversight or o.counsellor_id == reader.get("directory_id")]
    profile = request.profile
    body = {
        "case_no": case_no, "status": request.status, "urgent": request.urgent, "episode": request.episode,
        "triggers": request.triggers, "need": request.need,
        "consent": {"state": request.consent, "by": request.consent_by, "at": _iso(request.consent_at),
                    "emergency_reason": request.emergency_reason},
        "profile": {"dispute_type": profile.get("dispute_type"), "township_code": profile.get("township_code"),
                    "township_known": profile.get("township_known", True), "village": profile.get("village"),
                    "risk_signals": profile.get("risk_signals", []),
                    "preferred_gender": profile.get("preferred_gender"),
                    "preferred_age": profile.get("preferred_age")},
        "requested_at": _iso(request.requested_at), "first_offer_at": _iso(request.first_offer_at),
        "first_offer_deadline": _iso(offers.offer_deadline(request.requested_at, request.urgent)),
        "first_offer_late": offers.first_offer_late(request.requested_at, request.urgent, request.first_offer_at,
                                                    now),
        "counsellor_id": request.counsellor_id, "assigned_at": _iso(request.assigned_at),
        "unmatched_reason": request.unmatched_reason if oversight else None,
        "outcome": request.outcome, "outcome_at": _iso(request.outcome_at),
        "follow_up_due": _iso(request.follow_up_due),
        "follow_up_overdue": bool(request.follow_up_due and now > request.follow_up_due),
        "offers": [offer_view(o) for o in mine],
        "sessions": [_session_public(r) for r in session.scalars(
            select(SessionRow).where(SessionRow.case_no == case_no).order_by(SessionRow.at, SessionRow.id))],
    }
    if oversight:
        body["candidates"] = request.candidates
        body["history"] = [{"at": _iso(a.at), "actor": a.actor, "action": a.action, "detail": a.detail}
                           for a in session.scalars(select(AuditEntry).where(AuditEntry.case_no == case_no)
                                                    .order_by(AuditEntry.id))]
    return body


def list_sessions(session, case_no: str, reader: Mapping) -> dict:
    """Sessions of a case; notes only for their writer and the psych coordinator (sessions.can_read_notes)."""
    request = session.get(PsychRequest, case_no)
    if request is None:
        raise NotFound(f"no psych request for case {case_no}")
    if not _may_see_case(session, request, reader):
        raise Forbidden("you may not read the sessions of this case")
    rows = session.scalars(select(SessionRow).where(SessionRow.case_no == case_no)
                           .order_by(SessionRow.at, SessionRow.id))
    items = []
    for row in rows:
        item = _session_public(row)
        if sessions.can_read_notes(reader.get("role"), reader.get("directory_id"), _domain_session(row)):
            item["notes"] = row.notes
        items.append(item)
    return {"items": items}


def _flag(filters: Mapping, name: str) -> bool | None:
    if name not in filters:
        return None
    if filters[name] not in ("true", "false"):
        raise Invalid(f"{name} must be true or false", {name: ["true or false"]})
    return filters[name] == "true"


def list_cases(session, filters: Mapping, reader: Mapping, limit, offset, now: datetime) -> dict:
    """The coordinator's work list (or a counsellor's own cases), newest first."""
    limit, offset = roster.page_bounds(limit, offset)
    unknown = sorted(set(filters) - {"status", "urgent", "counsellor_id", "follow_up_overdue"})
    if unknown:
        raise Invalid("unknown filter", {name: ["filters are status, urgent, counsellor_id, follow_up_overdue"]
                                         for name in unknown})
    query = select(PsychRequest)
    if reader.get("role") == sessions.COUNSELLOR_ROLE:
        mine = select(Offer.case_no).where(Offer.counsellor_id == reader.get("directory_id"))
        query = query.where(PsychRequest.case_no.in_(mine))
    elif reader.get("role") not in OVERSIGHT_ROLES:
        raise Forbidden("you may not list psych cases")
    if "status" in filters:
        query = query.where(PsychRequest.status == filters["status"])
    if (urgent := _flag(filters, "urgent")) is not None:
        query = query.where(PsychRequest.urgent == urgent)
    if "counsellor_id" in filters:
        query = query.where(PsychRequest.counsellor_id == filters["counsellor_id"])
    if _flag(filters, "follow_up_overdue"):
        query = query.where(PsychRequest.follow_up_due < now)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(PsychRequest.requested_at.desc(), PsychRequest.case_no)
                           .limit(limit).offset(offset))
    items = [{"case_no": r.case_no, "status": r.status, "urgent": r.urgent, "consent": r.consent,
              "counsellor_id": r.counsellor_id, "requested_at": _iso(r.requested_at),
              "follow_up_due": _iso(r.follow_up_due), "outcome": r.outcome,
              "dispute_type": r.profile.get("dispute_type"), "township_code": r.profile.get("township_code")}
             for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def list_offers(session, filters: Mapping, reader: Mapping, limit, offset) -> dict:
    """A counsellor's own offers (open ones first), or everyone's for oversight roles."""
    limit, offset = roster.page_bounds(limit, offset)
    unknown = sorted(set(filters) - {"status", "case_no", "counsellor_id"})
    if unknown:
        raise Invalid("unknown filter", {name: ["filters are status, case_no, counsellor_id"] for name in unknown})
    query = select(Offer)
    if reader.get("role") == sessions.COUNSELLOR_ROLE:
        query = query.where(Offer.counsellor_id == reader.get("directory_id"))
    elif reader.get("role") not in OVERSIGHT_ROLES:
        raise Forbidden("you may not list offers")
    for name in ("status", "case_no", "counsellor_id"):
        if name in filters:
            query = query.where(getattr(Offer, name) == filters[name])
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by((Offer.status == "pending").desc(), Offer.id.desc())
                           .limit(limit).offset(offset))
    return {"items": [offer_view(o) for o in rows], "total": total, "limit": limit, "offset": offset}
