"""Psych's use cases over its database; no nameko here (service.py is the thin shell)."""
from __future__ import annotations

from sqlalchemy import select

from services.psych import match, offers
from services.psych.models import CounsellorRow, Offer, PsychRequest

_pools: dict[str, tuple[object, match.Pool]] = {}


def load_pool(session) -> match.Pool:
    """The in-memory pool, rebuilt when the roster changed (about 15 ms for 248 counsellors)."""
    stamp = session.execute(select(CounsellorRow.updated_at).order_by(CounsellorRow.updated_at.desc()).limit(1)).scalar()
    key = str(session.get_bind().url)
    cached = _pools.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    townships, _ = match.load_reference()
    pool = match.Pool(townships, [row.record for row in session.scalars(select(CounsellorRow))])
    _pools[key] = (stamp, pool)
    return pool


def replace_pool(session, records: list[dict], now) -> int:
    """Load the sample or a county's pool: insert or update each counsellor by id."""
    changed = 0
    for record in records:
        row = session.get(CounsellorRow, record["id"])
        if row is None:
            session.add(CounsellorRow(id=record["id"], active=record.get("active", True), record=record, updated_at=now))
            changed += 1
        elif row.record != record:
            row.record, row.active, row.updated_at = record, record.get("active", True), now
            changed += 1
    return changed


def history(session, case_no: str) -> list[offers.OfferRecord]:
    return [offers.OfferRecord(o.counsellor_id, o.offered_at, o.expires_at, o.status, o.answered_at)
            for o in session.scalars(select(Offer).where(Offer.case_no == case_no).order_by(Offer.id))]


def request_help(uow, data: dict) -> None:
    """psych_requested: record the request and consent, rank counsellors, offer the case if allowed."""
    session, now = uow.session, uow.now
    if session.get(PsychRequest, data["case_no"]) is not None:
        return
    profile = {
        "case_no": data["case_no"], "dispute_type": data.get("dispute_type") or "其他",
        "township_code": data.get("township") or "371324-001", "village": data.get("village"),
        "risk_signals": data.get("risk_signals") or [], "urgent": bool(data.get("urgent")),
    }
    consent = data.get("consent") if data.get("consent") in offers.CONSENT_STATES else "pending"
    request = PsychRequest(case_no=data["case_no"], profile=profile, urgent=profile["urgent"], consent=consent,
                           emergency_reason=data.get("emergency_reason"), status="await_consent", requested_at=now)
    session.add(request)
    advance(uow, request)


def advance(uow, request: PsychRequest) -> None:
    """Take the next step for a request: offer the next candidate, wait, or report no match."""
    session, now = uow.session, uow.now
    pool = load_pool(session)
    profile = match.CaseProfile.from_dict(request.profile)
    past = history(session, request.case_no)
    candidates = match.match(profile, pool, now, exclude=offers.tried_ids(past))
    request.candidates = [c.to_dict() for c in candidates]
    consent = offers.can_offer(request.consent, request.urgent, request.emergency_reason)
    no_match = None if candidates else match.explain_no_match(profile, pool, now)
    step = offers.next_step(candidates, past, now, urgent=request.urgent, consent=consent, no_match_reason=no_match)
    if step.action == "offer":
        counsellor = pool.get(step.counsellor_id)
        session.add(Offer(case_no=request.case_no, counsellor_id=step.counsellor_id, offered_at=now,
                          expires_at=step.expires_at, status="pending", score=step.candidate.score,
                          reasons=list(step.candidate.reasons), basis=step.reason))
        request.status = "offered"
        request.first_offer_at = request.first_offer_at or now
        uow.emit("counsellor_offered", {
            "case_no": request.case_no, "offer_id": f"{request.case_no}:{step.counsellor_id}",
            "counsellor": {"id": counsellor.id, "name": counsellor.name, "role": "counsellor",
                           "township": counsellor.township_code, "phone": counsellor.phone},
            "urgent": request.urgent, "expires_at": step.expires_at, "score": step.candidate.score,
            "reasons": list(step.candidate.reasons),
        }, correlation_id=request.case_no)
    elif step.action == "unmatched":
        request.status = "unmatched"
        uow.emit("psych_unmatched", {"case_no": request.case_no, "reason": step.reason, "urgent": request.urgent},
                 correlation_id=request.case_no)
    elif step.action == "await_consent":
        request.status = "await_consent"
