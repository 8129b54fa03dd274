"""Intake's use cases over its own database; no nameko here (service.py is the thin shell).

- submit: one submission from any channel (HTTP or AMQP): the first answer again for a
  resend, 409 for a changed body, else a new case or 并单 into an open one;
- ingest: one AMQP ingress message: who sent it, may they, is it a JSON object; then submit,
  and the outcome on `intake.ingress.results` through the outbox;
- the duplicate index (merge_keys, merge_profiles) and the bounded candidate lookup;
- unmerge, feedback to every source when a case is resolved or closed, citizen lookup,
  the places cache and the source systems of the AMQP ingress.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from services.common import privacy
from services.common.db import serialise
from services.contracts import channels
from services.contracts.errors import Conflict, Invalid, NotFound, ServiceError, Unavailable
from services.intake import canonical, ingress
from services.intake.casenos import next_case_no
from services.intake.merge import (
    Match,
    MergeConfig,
    MergeProfile,
    features_from_json,
    features_to_json,
    merge_keys,
    profile_features,
    profile_from_case,
    rules_digest,
)
from services.intake.merge import best_match as _best_match
from services.intake.models import (
    Case,
    IngressMessage,
    MergeKey,
    MergeProfileRow,
    Place,
    PlacesVersion,
    Source,
    SourceSystem,
)

log = logging.getLogger(__name__)

NOT_TOWNSHIPS = ("兰陵县", "兰陵", "苍山县")  # the county's names, not a township's
OPEN, RESOLVED, CLOSED = "open", "resolved", "closed"
EGRESS = "intake.egress"
FEEDBACK_NAMESPACE = uuid.UUID("6f1d8f0e-3c55-4c1b-9a57-4c3b1d2f0a11")
DEFAULT_REPLY = {
    "case_resolved": "您反映的事项已办结。",
    "case_closed": "您反映的事项已办结归档。",
    "case_unmerged": "经核查，您反映的事项与原并办案件不是同一事项，已单独立案办理。",
}
# How much sharing one blocking key says (merge.merge_keys prefixes): the same person or a
# near-identical text says much, a pair of common dispute words within a township little.
KEY_WEIGHTS = {"p": 4, "m": 3, "v": 2, "s": 2, "w": 2, "n": 1, "t": 1}
PER_KEY_LIMIT = 24      # most recent open cases read per key: bounds the work per submission
CANDIDATE_LIMIT = 8     # candidate cases scored, best-ranked by shared keys
MIN_SHARED = 1          # a case must share at least this weight of keys to be scored
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
        raise Unavailable("intake has not received the directory of places yet; try again shortly")
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
def submit(uow, channel: str, payload: dict, source_user: str | None, config: MergeConfig = MergeConfig()) -> dict:
    """Accept one submission. Returns the answer plus `created` (False for a resend).

    Everything is validated before anything is written, so an error leaves no trace.
    """
    session, now = uow.session, uow.now
    try:
        reference, fingerprint = channels.identify(channel, payload)
    except channels.SubmissionInvalid as exc:
        raise Invalid("the submission is invalid", exc.fields) from None
    # Looked up before the dates are checked: a resend long after is still the same submission.
    existing = session.scalar(select(Source).where(Source.channel == channel, Source.reference == reference))
    if existing is not None:
        if existing.fingerprint != fingerprint:
            field = channels.reference_field(channel)
            raise Conflict(f"{field} {reference!r} was already submitted with a different body",
                           {field: ["already used"]})
        return {**existing.answer, "created": False}
    try:
        submission = channels.load_submission(channel, payload, now)
        case = canonical.to_canonical(channel, submission, current_places(session), now)
    except channels.SubmissionInvalid as exc:
        raise Invalid("the submission is invalid", exc.fields) from None

    match = target = None
    if not case["resolved_on_site"]:  # a dispute already resolved on site is a record, never merged
        _one_at_a_time(session, case["township"])
        match = find_merge_match(session, profile_from_case("", case), config)
        target = session.get(Case, match.case_no) if match else None
    if target is not None and target.status == OPEN:
        answer = _attach(uow, match, target, case, source_user, fingerprint, config)
    else:
        answer = _open_case(uow, case, source_user, fingerprint, config)
    return {**answer, "created": True}


def _one_at_a_time(session, township: str | None) -> None:
    """Two reports of one dispute arriving at the same moment (on two intake replicas) must
    not both open a case: on PostgreSQL the check and the insert run one township at a time
    (common.db.serialise: an advisory lock on PostgreSQL, the write lock on SQLite)."""
    serialise(session, f"intake-merge:{township}")


def _open_case(uow, case: dict, source_user: str | None, fingerprint: str, config: MergeConfig) -> dict:
    session, now = uow.session, uow.now
    case_no = next_case_no(session, now)
    answer = {"case_no": case_no, "status": "received"}
    on_site = bool(case["resolved_on_site"])
    session.add(Case(
        case_no=case_no, status=RESOLVED if on_site else OPEN, channel=case["channel"], township=case["township"],
        village=case["village"], title=case["title"][:200], content=case["content"], urgent=case["urgent"],
        accepted_at=now, canonical=_stored(case), outcome="resolved_on_site" if on_site else None,
        finished_at=now if on_site else None,
    ))
    source = _new_source(case_no, case, source_user, fingerprint, answer, now)
    session.add(source)
    session.flush()
    if not on_site:
        index_source(session, source.id, profile_from_case(case_no, case), config)
    uow.emit("case_received", case_received(case_no, case, now, source_user), correlation_id=case_no)
    _emit_urgent(uow, case_no, case)
    return answer


def _attach(uow, match: Match, target: Case, case: dict, source_user: str | None, fingerprint: str,
            config: MergeConfig) -> dict:
    """并单: the submission joins the open case as another source, keeping its own obligations."""
    session, now = uow.session, uow.now
    answer = {"case_no": target.case_no, "status": "merged", "merged_into": target.case_no}
    source = _new_source(target.case_no, case, source_user, fingerprint, answer, now)
    source.merge = {"score": match.score, "similarity": match.similarity, "required": match.required,
                    "matched": match.matched, "reasons": match.reasons, "at": now.isoformat()}
    session.add(source)
    session.flush()
    index_source(session, source.id, profile_from_case(target.case_no, case), config)
    if case["urgent"]:
        target.urgent = True
    count = session.scalar(select(func.count()).select_from(Source).where(Source.case_no == target.case_no))
    uow.emit("case_merged", {
        "case_no": target.case_no, "source": _source_data(case, source_user), "score": match.score,
        "matched": match.matched, "reasons": match.reasons, "similarity": match.similarity,
        "required": match.required, "title": privacy.mask_text(case["title"]), "urgent": case["urgent"],
        "sources": count, "merged_at": now,
    }, correlation_id=target.case_no)
    _emit_urgent(uow, target.case_no, case)  # never held back by merging
    return answer


def _new_source(case_no, case, source_user, fingerprint, answer, now) -> Source:
    complainant = case["complainant"] or {}
    return Source(
        case_no=case_no, channel=case["channel"], reference=case["reference"], source_user=source_user,
        fingerprint=fingerprint, received_at=case["received_at"], submitted_at=now,
        complainant_name=complainant.get("name"), complainant_phone=complainant.get("phone"),
        phone_hash=privacy.keyed_hash(complainant.get("phone"), "phone"),
        id_hash=privacy.keyed_hash(complainant.get("id_number"), "id_number"),
        obligations=case["obligations"], answer=answer, canonical=_stored(case), urgent=case["urgent"],
    )


def _emit_urgent(uow, case_no: str, case: dict) -> None:
    if not case["urgent"]:
        return
    uow.emit("case_urgent", {
        "case_no": case_no, "township": case["township"], "signals": case["urgent_signals"],
        "summary": privacy.mask_text(case["content"][:120]), "complainant": case["complainant"] or None,
        "detected_at": uow.now,
    }, correlation_id=case_no)


def _stored(case: dict) -> dict:
    return {**case, "received_at": case["received_at"].isoformat()}


def _loaded(stored: dict) -> dict:
    return {**stored, "received_at": datetime.fromisoformat(stored["received_at"])}


PERSONAL_DETAILS = ("callback_phone",)  # travel sealed, in the source, not in `details`


def _source_data(case: dict, source_user: str | None) -> dict:
    complainant = case["complainant"]
    return {
        "channel": case["channel"], "reference": case["reference"], "source_user": source_user,
        "received_at": case["received_at"],
        "complainant": dict(complainant, role="complainant") if complainant else None,
        "callback_phone": case["details"].get("callback_phone"),
        "obligations": case["obligations"],
    }


def case_received(case_no: str, case: dict, now: datetime, source_user: str | None) -> dict:
    details = {k: v for k, v in case["details"].items() if k not in PERSONAL_DETAILS}
    return {
        "case_no": case_no,
        "accepted_at": now,
        "source": _source_data(case, source_user),
        "title": case["title"],
        "content": case["content"],
        "township": case["township"],
        "village": case["village"],
        "village_name": case.get("village_name"),
        "grid_code": case["grid_code"],
        "centre": details.get("centre") if case["channel"] == "walkin" else None,
        "grid_worker": details.get("worker_id") if case["channel"] == "grid" else None,
        "wants_mediator": details.get("wants_mediator"),
        "onsite_outcome": details.get("outcome") if case["resolved_on_site"] else None,
        "details": details,
        "address": case["address"],
        "parties": case["parties"],
        "people_count": case["people_count"],
        "petition_form": case["petition_form"],
        "app_section": case["app_section"],
        "urgent": case["urgent"],
        "urgent_signals": case["urgent_signals"],
        "resolved_on_site": bool(case["resolved_on_site"]),
    }


# -- the duplicate index --------------------------------------------------------
def find_merge_match(session, profile: MergeProfile, config: MergeConfig = MergeConfig()) -> Match | None:
    """The open case this report repeats, or None; never scans cases.

    Reads at most PER_KEY_LIMIT index rows per blocking key (the most recent in the merge
    window), ranks the cases found by the weight of the keys they share and scores the
    best CANDIDATE_LIMIT of them, so the cost stays flat however many cases are stored.
    """
    keys = merge_keys(profile, config)
    if not keys:
        return None
    window_start = profile.opened_at - timedelta(days=config.window_days)
    candidates = candidate_profiles(session, keys, window_start)
    return _best_match(profile, candidates, config) if candidates else None


def candidate_profiles(session, keys, window_start: datetime, *, per_key: int = PER_KEY_LIMIT,
                       limit: int = CANDIDATE_LIMIT) -> list[MergeProfile]:
    """The merge profiles of the open cases that share the most (weighted) keys."""
    weights = {key: KEY_WEIGHTS.get(key.split(":", 1)[0], 1) for key in keys}
    if session.get_bind().dialect.name == "postgresql":
        ordered = sorted(weights)
        rows = session.execute(_PG_CANDIDATES, {  # one round trip: the ranking and the profiles
            "keys": ordered, "weights": [weights[k] for k in ordered], "window_start": window_start,
            "per_key": per_key, "limit": limit, "min_shared": MIN_SHARED,
        })
        return [_profile(row) for row in rows]
    ranked: dict[str, list] = {}
    for key, weight in weights.items():
        latest = session.execute(
            select(MergeKey.case_no, MergeKey.opened_at)
            .where(MergeKey.key == key, MergeKey.opened_at >= window_start)
            .order_by(MergeKey.opened_at.desc()).limit(per_key)
        )
        for case_no, opened_at in latest:
            entry = ranked.setdefault(case_no, [0, opened_at])
            entry[0] += weight
    ranked = {case_no: entry for case_no, entry in ranked.items() if entry[0] >= MIN_SHARED}
    best = [c for c, _ in sorted(ranked.items(), key=lambda item: (-item[1][0], -item[1][1].timestamp()))[:limit]]
    return load_profiles(session, best)


_PROFILE_COLUMNS = (MergeProfileRow.case_no, MergeProfileRow.profile, MergeProfileRow.address,
                    MergeProfileRow.features, MergeProfileRow.rules_digest)
_PG_CANDIDATES = text("""
    WITH hits AS (
        SELECT hit.case_no, sum(q.weight) AS shared, max(hit.opened_at) AS latest
        FROM unnest(CAST(:keys AS text[]), CAST(:weights AS int[])) AS q(key, weight)
        CROSS JOIN LATERAL (
            SELECT m.case_no, m.opened_at FROM merge_keys m
            WHERE m.key = q.key AND m.opened_at >= :window_start
            ORDER BY m.opened_at DESC LIMIT :per_key
        ) AS hit
        GROUP BY hit.case_no
        HAVING sum(q.weight) >= :min_shared
        ORDER BY shared DESC, latest DESC
        LIMIT :limit
    )
    SELECT p.case_no, p.profile, p.address, p.features, p.rules_digest
    FROM hits JOIN merge_profiles p ON p.case_no = hits.case_no
""").columns(*_PROFILE_COLUMNS)


def load_profiles(session, case_nos) -> list[MergeProfile]:
    rows = session.execute(select(*_PROFILE_COLUMNS).where(MergeProfileRow.case_no.in_(list(case_nos))))
    return [_profile(row) for row in rows]


def _profile(row) -> MergeProfile:
    values = dict(row.profile, case_no=row.case_no, address=row.address)
    if row.features is not None and row.rules_digest == rules_digest(MergeConfig().rules_path):
        values["features"] = features_from_json(row.features)
    return MergeProfile.from_row(values)


def index_source(session, source_id: int, profile: MergeProfile, config: MergeConfig = MergeConfig()) -> None:
    """Put one source of an open case into the duplicate index."""
    row = profile.to_row()
    address = row.pop("address", None)
    session.add(MergeProfileRow(
        source_id=source_id, case_no=profile.case_no, opened_at=profile.opened_at, profile=row, address=address,
        features=features_to_json(profile_features(profile, config)), rules_digest=rules_digest(config.rules_path),
    ))
    add_keys(session, profile.case_no, merge_keys(profile, config), profile.opened_at)


def add_keys(session, case_no: str, keys, opened_at: datetime) -> None:
    """Insert a case's keys; a key it has already keeps the later time (the window runs from it)."""
    if not keys:
        return
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(MergeKey)
        later = func.greatest(MergeKey.opened_at, stmt.excluded.opened_at)
    else:
        stmt = sqlite.insert(MergeKey)
        later = func.max(MergeKey.opened_at, stmt.excluded.opened_at)
    stmt = stmt.on_conflict_do_update(index_elements=["case_no", "key"], set_={"opened_at": later})
    session.execute(stmt, [{"case_no": case_no, "key": key, "opened_at": opened_at} for key in sorted(keys)])


def deindex_case(session, case_no: str) -> None:
    """The case left the open statuses: it is no longer a merge candidate."""
    session.execute(delete(MergeKey).where(MergeKey.case_no == case_no))
    session.execute(delete(MergeProfileRow).where(MergeProfileRow.case_no == case_no))


def reindex_case(session, case_no: str, config: MergeConfig = MergeConfig()) -> None:
    """Rebuild a case's keys from the profiles of the sources it still has."""
    session.execute(delete(MergeKey).where(MergeKey.case_no == case_no))
    for profile in load_profiles(session, [case_no]):
        add_keys(session, case_no, merge_keys(profile, config), profile.opened_at)


# -- undoing a merge ------------------------------------------------------------
def unmerge(uow, case_no: str, channel: str, reference: str, reason: str, actor: str | None,
            config: MergeConfig = MergeConfig()) -> dict:
    """Staff split a wrongly merged source off: it becomes a case of its own."""
    session, now = uow.session, uow.now
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("say why the merge was wrong", {"reason": ["is required"]})
    source = session.scalar(select(Source).where(Source.channel == channel, Source.reference == reference))
    if source is None or source.case_no != case_no:
        raise NotFound(f"case {case_no} has no source {channel}/{reference}")
    if not source.merge:
        raise Conflict("this source opened the case; only a source merged into it can be split off",
                       {"reference": ["is the case's first source"]})
    case = session.get(Case, case_no)
    if case.status != OPEN:
        raise Conflict(f"case {case_no} is {case.status}; merges can be undone only while it is open")
    split = _loaded(source.canonical)
    new_case_no = next_case_no(session, now)
    session.add(Case(
        case_no=new_case_no, status=OPEN, channel=split["channel"], township=split["township"],
        village=split["village"], title=split["title"][:200], content=split["content"], urgent=split["urgent"],
        accepted_at=now, canonical=source.canonical,
    ))
    source.history = [*(source.history or []), {"from_case": case_no, "merge": source.merge, "at": now.isoformat(),
                                                 "actor": actor, "reason": reason.strip()}]
    source.case_no, source.merge = new_case_no, None
    source.answer = {"case_no": new_case_no, "status": "received"}
    session.execute(delete(MergeProfileRow).where(MergeProfileRow.source_id == source.id))
    session.flush()
    reindex_case(session, case_no, config)
    index_source(session, source.id, profile_from_case(new_case_no, split), config)
    uow.emit("case_unmerged", {"case_no": case_no, "reference": reference, "channel": channel,
                               "new_case_no": new_case_no, "reason": reason.strip(), "actor": actor, "at": now},
             correlation_id=case_no)
    uow.emit("case_received", case_received(new_case_no, split, now, source.source_user), correlation_id=new_case_no)
    _emit_urgent(uow, new_case_no, split)
    _tell_source(uow, source, new_case_no, "case_unmerged", "received", DEFAULT_REPLY["case_unmerged"], now)
    return {"case_no": case_no, "new_case_no": new_case_no, "channel": channel, "reference": reference}


# -- feedback to the sources ----------------------------------------------------
def case_finished(uow, event_type: str, data: dict) -> int:
    """case_resolved / case_closed: every source gets its feedback on intake.egress; the case
    leaves the duplicate index. Returns how many sources were told."""
    session = uow.session
    case = session.get(Case, data["case_no"])
    if case is None:
        log.warning("%s for %s, a case intake does not know; nothing to send", event_type, data["case_no"])
        return 0
    at = data.get("resolved_at") if event_type == "case_resolved" else data.get("closed_at")
    at = at or uow.now
    reply = data.get("summary") or case.reply or DEFAULT_REPLY[event_type]
    outcome = data.get("outcome")
    if event_type == "case_closed":
        case.status = CLOSED
    elif case.status == OPEN:
        case.status = RESOLVED
    case.outcome, case.reply = outcome or case.outcome, reply
    case.finished_at = case.finished_at or at
    deindex_case(session, case.case_no)
    status = "closed" if event_type == "case_closed" else (outcome or "resolved")
    sources = session.scalars(select(Source).where(Source.case_no == case.case_no).order_by(Source.id)).all()
    for source in sources:
        _tell_source(uow, source, case.case_no, event_type, status, reply, at, outcome=outcome)
        if event_type == "case_closed":
            source.canonical = None  # kept only while the source might be split off (unmerge)
    return len(sources)


def _tell_source(uow, source: Source, case_no: str, event_type: str, status: str, reply: str, at: datetime,
                 **extra) -> None:
    """One feedback message to the source's system, with an id it can deduplicate on."""
    message_id = str(uuid.uuid5(FEEDBACK_NAMESPACE, f"{source.channel}/{source.reference}/{case_no}/{event_type}"))
    body = {"reference": source.reference, "case_no": case_no, "status": status, "reply": reply,
            "at": at.isoformat(), **{k: v for k, v in extra.items() if v is not None}}
    uow.publish(EGRESS, f"{source.channel}.{event_type}", body, correlation_id=case_no, message_id=message_id)
    sent = {"event": event_type, "at": uow.now.isoformat(), "message_id": message_id}
    source.feedback = [*(source.feedback or []), sent]
    if event_type != "case_unmerged":
        source.feedback_sent_at = source.feedback_sent_at or uow.now
        source.obligations = [
            {**owed, "fulfilled_at": owed.get("fulfilled_at") or uow.now.isoformat()} if owed["to"] == "source_system"
            else owed for owed in source.obligations
        ]


# -- the AMQP ingress -----------------------------------------------------------
def ingest(uow, body: bytes, properties: dict, config: MergeConfig = MergeConfig()) -> str | None:
    """Handle one ingress message; its result goes out through the outbox in this transaction.

    Returns None when it was accepted (or merged), else the reason to dead-letter it with.
    A transient fault (no directory yet, a database error) raises, so it is retried.
    """
    session = uow.session
    env = ingress.envelope(body, properties)
    try:
        system = session.get(SourceSystem, env.user) if env.user else None
        if system is None or system.disabled_at is not None:
            raise ingress.Rejected("unauthorized", "the message has no user_id of a registered source system"
                                   if env.user is None else f"{env.user} is not a registered source system")
        channel = ingress.check_channel(env, system.channels)
        ingress.check_message_id(env)
    except ingress.Rejected as rejected:
        return _reject(uow, env, rejected, payload=None)

    seen = session.get(IngressMessage, (env.user, env.message_id))
    if seen is not None and not (env.replayed and seen.outcome["status"] == "rejected"):
        if seen.body_hash != env.body_hash:
            return _reject(uow, env, ingress.Rejected(
                "conflict", "this message_id was already used for a different message",
                {"message_id": ["already used"]}), payload=None, record=False)
        log.info("ingress message %s from %s delivered again; already handled", env.message_id, env.user)
        return seen.outcome.get("dead_letter")
    try:
        payload = ingress.decode(body, env)
    except ingress.Rejected as rejected:
        return _reject(uow, env, rejected, payload=None)
    try:
        answer = submit(uow, channel, payload, env.user, config)
    except Unavailable:
        raise  # transient: retried
    except ServiceError as exc:
        session.rollback()  # submit writes nothing before it fails; be sure of it
        uow.emitted.clear()
        return _reject(uow, env, ingress.Rejected(exc.code, exc.message, exc.fields), payload=payload)
    status = "merged" if answer["status"] == "merged" else "accepted"
    extra = {"merged_into": answer["merged_into"]} if status == "merged" else {}
    if not answer["created"]:
        extra["duplicate"] = True
    result = ingress.result_body(_reference(channel, payload), answer["case_no"], status, None, **extra)
    _record_and_publish(uow, env, channel, result, dead_letter=None)
    return None


def _reject(uow, env: ingress.Envelope, rejected: ingress.Rejected, payload: dict | None, record: bool = True):
    reason = rejected.reason()
    result = ingress.result_body(_reference(env.channel, payload), None, "rejected", rejected.error())
    log.warning("ingress message %s from %s rejected: %s", env.message_id, env.user or "(no user)", reason)
    can_record = (record and rejected.code != "unauthorized" and env.user is not None
                  and env.message_id is not None and len(env.message_id) <= ingress.MESSAGE_ID_MAX)
    _record_and_publish(uow, env, env.channel, result, dead_letter=reason, record=can_record)
    return reason


def _record_and_publish(uow, env, channel, result: dict, dead_letter: str | None, record: bool = True) -> None:
    if record:
        outcome = {**result, "dead_letter": dead_letter}
        row = uow.session.get(IngressMessage, (env.user, env.message_id))
        if row is None:
            uow.session.add(IngressMessage(source_user=env.user, message_id=env.message_id, body_hash=env.body_hash,
                                           outcome=outcome, handled_at=uow.now))
        else:  # a replay of a rejected message: its new outcome replaces the old
            row.body_hash, row.outcome, row.handled_at = env.body_hash, outcome, uow.now
    uow.publish(ingress.RESULTS_EXCHANGE, ingress.result_routing_key(env.user, channel, result["status"]), result,
                correlation_id=env.message_id)


def _reference(channel: str | None, payload: dict | None) -> str | None:
    if not payload or channel not in channels.CHANNELS:
        return None
    value = payload.get(channels.reference_field(channel))
    return value[:64] if isinstance(value, str) else None


INGRESS_MEMORY = timedelta(days=30)


def forget_old_ingress_messages(uow, older_than: timedelta = INGRESS_MEMORY) -> int:
    """Message ids are remembered long enough to catch redeliveries and resends; then dropped
    (a resend of the same reference is still recognised by its source row)."""
    result = uow.session.execute(delete(IngressMessage).where(IngressMessage.handled_at < uow.now - older_than))
    return result.rowcount or 0


# -- source systems -------------------------------------------------------------
def put_source_system(session, broker_user: str, channel_list: list[str], now: datetime,
                      description: str | None = None) -> SourceSystem:
    unknown = [c for c in channel_list if c not in channels.CHANNELS]
    if not broker_user or unknown or not channel_list:
        raise Invalid("a source system needs a broker user and known channels", {
            **({"channels": [f"unknown: {', '.join(unknown)}" if unknown else "name at least one"]}
               if unknown or not channel_list else {}),
            **({"broker_user": ["is required"]} if not broker_user else {}),
        })
    system = session.get(SourceSystem, broker_user)
    if system is None:
        system = SourceSystem(broker_user=broker_user, created_at=now)
        session.add(system)
    system.channels, system.description, system.disabled_at = sorted(set(channel_list)), description, None
    return system


def disable_source_system(session, broker_user: str, now: datetime) -> bool:
    system = session.get(SourceSystem, broker_user)
    if system is None or system.disabled_at is not None:
        return False
    system.disabled_at = now
    return True


def source_systems(session) -> list[dict]:
    return [{"broker_user": s.broker_user, "channels": s.channels, "description": s.description,
             "created_at": s.created_at.isoformat(), "disabled_at": s.disabled_at.isoformat() if s.disabled_at else None}
            for s in session.scalars(select(SourceSystem).order_by(SourceSystem.broker_user))]


# -- queries --------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


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
        "urgent": bool(source.urgent),
        "obligations": source.obligations,
        "merged": source.merge,
        "unmerged": source.history or [],
        "feedback_sent_at": _iso(source.feedback_sent_at),
        "feedback": source.feedback or [],
    }


def _case_and_sources(session, case_no: str):
    case = session.get(Case, case_no)
    if case is None:
        raise NotFound(f"no case {case_no}")
    return case, session.scalars(select(Source).where(Source.case_no == case_no).order_by(Source.id)).all()


def case_view(session, case_no: str) -> dict:
    case, sources = _case_and_sources(session, case_no)
    return {
        "case_no": case.case_no,
        "status": case.status,
        "channel": case.channel,
        "township": case.township,
        "urgent": case.urgent,
        "accepted_at": case.accepted_at.isoformat(),
        "outcome": case.outcome,
        "finished_at": _iso(case.finished_at),
        "sources": [source_view(s) for s in sources],
    }


def lookup(session, case_no, phone) -> dict:
    """办理回复: a citizen's own case, found by its number and the phone they gave. Any mismatch
    is the same NotFound, so the answer tells nothing about which part was wrong."""
    mismatch = NotFound("no case with this number and phone")
    if not isinstance(case_no, str) or not isinstance(phone, str) or len(case_no) > 32:
        raise mismatch
    digest = privacy.keyed_hash(privacy.normalise_phone(phone), "phone")
    case = session.get(Case, case_no.strip())
    if case is None or digest is None:
        raise mismatch
    sources = session.scalars(select(Source).where(Source.case_no == case.case_no).order_by(Source.id)).all()
    if digest not in {s.phone_hash for s in sources}:
        raise mismatch
    return {
        "case_no": case.case_no,
        "accepted_at": case.accepted_at.isoformat(),
        "township": case.township,
        "title": privacy.mask_text(case.title),
        "intake_status": case.status,
        "outcome": case.outcome,
        "reply": case.reply,
        "finished_at": _iso(case.finished_at),
        "sources": [{
            "channel": s.channel,
            "received_at": s.received_at.isoformat(),
            "obligations": [{"label": o["label"], "due_at": o.get("due_at")} for o in s.obligations
                            if o["to"] != "source_system"],
            "feedback_sent_at": _iso(s.feedback_sent_at),
        } for s in sources if s.phone_hash == digest],
    }

