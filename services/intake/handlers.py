"""Intake's use cases over its own database; no nameko here (service.py is the thin shell)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from services.common import privacy
from services.contracts import channels
from services.contracts.errors import Conflict, Invalid, NotFound
from services.intake import canonical
from services.intake.casenos import next_case_no
from services.intake.models import Case, Place, PlacesVersion, Source

NOT_TOWNSHIPS = ("兰陵县", "兰陵", "苍山县")  # the county's names, not a township's
_places: dict[str, tuple[int, canonical.StaticPlaces]] = {}


# -- places cache ---------------------------------------------------------------
def replace_places(session, data: dict, now: datetime) -> bool:
    """Apply a directory_updated snapshot unless a newer one is already stored."""
    version = session.get(PlacesVersion, 1)
    if version is not None and version.version >= data["version"]:
        return False
    places = data["places"]
    session.execute(delete(Place))
    session.execute(insert(Place), [
        {"kind": kind, "code": row["code"], "data": row}
        for kind in ("townships", "villages", "grids") for row in places.get(kind, [])
    ])
    if version is None:
        version = PlacesVersion(id=1, version=0, digest="", updated_at=now)
        session.add(version)
    version.version, version.digest, version.updated_at = data["version"], places.get("digest", ""), now
    return True


def current_places(session) -> canonical.StaticPlaces:
    version = session.get(PlacesVersion, 1)
    if version is None:
        raise Invalid("intake has not received the directory of places yet; try again shortly")
    key = str(session.get_bind().url)
    cached = _places.get(key)
    if cached and cached[0] == version.version:
        return cached[1]
    rows = {"townships": [], "villages": [], "grids": []}
    for place in session.scalars(select(Place)):
        rows[place.kind].append(place.data)
    places = canonical.StaticPlaces(rows["townships"], rows["villages"], rows["grids"], NOT_TOWNSHIPS)
    _places[key] = (version.version, places)
    return places


def places_loaded(session) -> bool:
    return session.get(PlacesVersion, 1) is not None


# -- submissions ----------------------------------------------------------------
def submit(uow, channel: str, payload: dict, source_user: str | None) -> dict:
    """Accept one submission: the first answer again for a resend, 409 for a changed body."""
    session, now = uow.session, uow.now
    try:
        submission = channels.load_submission(channel, payload, now)
        fingerprint = channels.body_fingerprint(channel, payload)
    except channels.SubmissionInvalid as exc:
        raise Invalid("the submission is invalid", exc.fields) from None
    reference = submission[channels.reference_field(channel)]
    existing = session.scalar(select(Source).where(Source.channel == channel, Source.reference == reference))
    if existing is not None:
        if existing.fingerprint != fingerprint:
            raise Conflict(f"{channels.reference_field(channel)} {reference!r} was already submitted with a "
                           f"different body", {channels.reference_field(channel): ["already used"]})
        return {**existing.answer, "created": False}
    try:
        case = canonical.to_canonical(channel, submission, current_places(session), now)
    except channels.SubmissionInvalid as exc:
        raise Invalid("the submission is invalid", exc.fields) from None

    case_no = next_case_no(session, now)
    answer = {"case_no": case_no, "status": "received"}
    complainant = case["complainant"] or {}
    session.add(Case(
        case_no=case_no, status="open", channel=channel, township=case["township"], village=case["village"],
        title=case["title"][:200], content=case["content"], urgent=case["urgent"], accepted_at=now,
        canonical=case,
    ))
    session.add(Source(
        case_no=case_no, channel=channel, reference=reference, source_user=source_user, fingerprint=fingerprint,
        received_at=case["received_at"], submitted_at=now, complainant_name=complainant.get("name"),
        complainant_phone=complainant.get("phone"),
        phone_hash=privacy.keyed_hash(complainant.get("phone"), "phone"),
        id_hash=privacy.keyed_hash(complainant.get("id_number"), "id"),
        obligations=case["obligations"], answer=answer,
    ))
    uow.emit("case_received", case_received(case_no, case, now, source_user), correlation_id=case_no)
    if case["urgent"]:
        uow.emit("case_urgent", {
            "case_no": case_no, "township": case["township"], "signals": case["urgent_signals"],
            "summary": privacy.mask_text(case["content"][:120]), "complainant": complainant or None,
            "detected_at": now,
        }, correlation_id=case_no)
    return {**answer, "created": True}


def case_received(case_no: str, case: dict, now: datetime, source_user: str | None) -> dict:
    complainant = case["complainant"]
    return {
        "case_no": case_no,
        "accepted_at": now,
        "source": {
            "channel": case["channel"], "reference": case["reference"], "source_user": source_user,
            "received_at": case["received_at"],
            "complainant": dict(complainant, role="complainant") if complainant else None,
            "obligations": case["obligations"],
        },
        "title": case["title"],
        "content": case["content"],
        "township": case["township"],
        "village": case["village"],
        "grid_code": case["grid_code"],
        "centre": case["details"].get("centre") if case["channel"] == "walkin" else None,
        "address": case["address"],
        "parties": case["parties"],
        "people_count": case["people_count"],
        "petition_form": case["petition_form"],
        "app_section": case["app_section"],
        "urgent": case["urgent"],
        "urgent_signals": case["urgent_signals"],
        "resolved_on_site": bool(case["resolved_on_site"]),
    }


# -- queries --------------------------------------------------------------------
def source_view(source: Source) -> dict:
    return {
        "channel": source.channel,
        "reference": source.reference,
        "source_user": source.source_user,
        "received_at": source.received_at.isoformat(),
        "complainant": {
            "name": privacy.mask_name(source.complainant_name),
            "phone": privacy.mask_phone(source.complainant_phone),
        },
        "obligations": source.obligations,
        "merged": source.merge,
        "feedback_sent_at": source.feedback_sent_at.isoformat() if source.feedback_sent_at else None,
    }


def case_view(session, case_no: str) -> dict:
    case = session.get(Case, case_no)
    if case is None:
        raise NotFound(f"no case {case_no}")
    sources = session.scalars(select(Source).where(Source.case_no == case_no).order_by(Source.id)).all()
    return {
        "case_no": case.case_no,
        "status": case.status,
        "channel": case.channel,
        "township": case.township,
        "urgent": case.urgent,
        "accepted_at": case.accepted_at.isoformat(),
        "sources": [source_view(s) for s in sources],
    }
