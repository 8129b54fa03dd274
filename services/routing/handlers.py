"""Routing's use cases over its own database; no nameko here (service.py is the thin shell).

Events in, each one transaction with its outgoing events:
- `route_new_case`     case_received → case_routed (attempt 1)
- `reroute_returned`   assignment_returned (退单) → case_routed at the same level, never back to
                       anyone who held the case before
- `escalate_case`      escalation_requested → case_routed one level up the chain (grid → village →
                       work area → township → the county room guiding the township), carrying the
                       history of the earlier attempts
- `case_ended`         case_resolved / case_closed → the mediators' load is released
Staff and parties (RPC from the gateway):
- `choose_mediators`   the parties' own pick (超市 点将, 一对一 or 多对一) → case_routed, or refused
                       with the reason for each mediator
- `edit_directory`     roster edits → a new directory version and `directory_updated`
- `load_reference`     `lanling load-reference`, never silently overwriting staff edits
Queries: `explain` (POST /classify), a case's routing, the audit; the directory's read models
(reference lists, the published roster) are in views.py.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import asdict, replace

from sqlalchemy import delete, event, func, insert, select, tuple_

from services.contracts.errors import Conflict, Invalid, NotFound
from services.routing import roster, views
from services.routing.classify import classify
from services.routing.decide import (
    LEVEL_NAMES, CannotEscalate, CaseFacts, Decision, JointPlan, decide_staffed, default_rules, escalate,
    staff_refs, validate_choice,
)
from services.routing.directory import Directory, DirectoryError
from services.routing.domain import LEVELS, Classification, Severity
from services.routing.explain import ItemInvalid, explain
from services.routing.models import (
    DirectoryChange, DirectoryRecord, DirectoryVersion, OpenAssignment, RoutedCase, RoutingDecision,
)

log = logging.getLogger(__name__)
_directories: dict[str, tuple[int, Directory]] = {}
MAX_CHOICE_IDS = 10
# The level a mediator's own seat is at: a case whose lead is a township mediator is a township case.
SEAT_LEVEL = {"village": "village", "township": "township", "county": "county"}


class DirectoryMissing(RuntimeError):
    pass


class CaseNotRoutedYet(Exception):
    """An event about a case routing has not routed yet: retried, then dead-lettered."""


# --- the directory ---------------------------------------------------------------------------


def key_of(record: dict) -> str:
    return record.get("id") or record["code"]


def current_directory(session) -> Directory:
    """The directory as stored, rebuilt only when its version changed."""
    row = session.get(DirectoryVersion, 1)
    if row is None:
        raise DirectoryMissing("the directory is empty: run `lanling load-reference`")
    key = str(session.get_bind().url)
    cached = _directories.get(key)
    if cached and cached[0] == row.version:
        return cached[1]
    records = defaultdict(list)
    for record in session.scalars(select(DirectoryRecord)):
        records[record.kind].append(record.data)
    try:
        directory = Directory.from_records(records)
    except DirectoryError as exc:
        raise DirectoryMissing(f"the stored directory cannot be read ({exc}): run `lanling load-reference`") from exc
    _directories[key] = (row.version, directory)
    return directory


def _remember_after_commit(session, directory: Directory, version: int) -> None:
    """Cache the new directory once its version is committed (never a version that rolled back)."""
    key = str(session.get_bind().url)
    event.listen(session, "after_commit", lambda _session: _directories.__setitem__(key, (version, directory)),
                 once=True)


def _digest(records: dict) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _write_records(session, changes: dict[str, list[dict]], now, removed: dict[str, list[str]] | None = None) -> None:
    """Upsert these records (and delete the removed keys), kind by kind."""
    for kind in set(changes) | set(removed or {}):
        records = changes.get(kind, [])
        keys = [key_of(record) for record in records] + list((removed or {}).get(kind, []))
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            session.execute(delete(DirectoryRecord).where(
                tuple_(DirectoryRecord.kind, DirectoryRecord.code).in_([(kind, key) for key in chunk])))
        if records:
            session.execute(insert(DirectoryRecord), [
                {"kind": kind, "code": key_of(record), "data": record, "updated_at": now} for record in records])


def load_reference(uow, directory: Directory, *, force: bool = False) -> str:
    """Store the reference directory: `loaded`, `unchanged`, or `kept` (staff edited the rosters
    since the last load, so their edits stay unless `force`). intake always gets the snapshot."""
    session = uow.session
    records = directory.to_records()
    digest = _digest(records)
    version = session.get(DirectoryVersion, 1, with_for_update=True)
    same = version is not None and version.reference_digest == digest
    if version is not None and ((same and not version.edits) or (not force and (same or version.edits))):
        publish_places(uow, current_directory(session), version.version, [])  # a fresh intake gets its places
        return "unchanged" if same else "kept"
    try:
        old = current_directory(session).to_records() if version is not None else None
    except DirectoryMissing:
        old = None
    if old is None:
        session.execute(delete(DirectoryRecord))
        _write_records(session, records, uow.now)
    else:
        changes, removed = {}, {}
        for kind, items in records.items():
            before = {key_of(record): record for record in old.get(kind, [])}
            changes[kind] = [record for record in items if before.get(key_of(record)) != record]
            removed[kind] = sorted(set(before) - {key_of(record) for record in items})
        _write_records(session, changes, uow.now, removed)
    if version is None:
        version = DirectoryVersion(id=1, version=0, digest=digest, updated_at=uow.now, edits=0)
        session.add(version)
    version.version += 1
    version.digest, version.reference_digest, version.edits, version.updated_at = digest, digest, 0, uow.now
    session.add(DirectoryChange(version=version.version, at=uow.now, actor="lanling load-reference",
                                actor_role="operator", kind="*", key="*", action="reference_loaded",
                                reason="forced over staff edits" if force else None,
                                after={kind: len(items) for kind, items in records.items()}))
    session.flush()
    publish_places(uow, directory, version.version, ["reference data loaded"])
    _remember_after_commit(session, directory, version.version)
    return "loaded"


def publish_places(uow, directory: Directory, version: int, changed: list[str]) -> None:
    uow.emit("directory_updated", {"version": version, "places": directory.places_snapshot(), "changed": changed},
             correlation_id=None)


def edit_directory(uow, actor: dict, kind: str, action: str, key: str | None, data: dict | None,
                   reason: str | None = None) -> dict:
    """One roster edit by a staff member (see roster.py): stored, audited, and announced."""
    session = uow.session
    version = session.get(DirectoryVersion, 1, with_for_update=True)
    if version is None:
        raise DirectoryMissing("the directory is empty: run `lanling load-reference`")
    directory = current_directory(session)
    edit, changed = roster.plan_edit(directory, actor, kind, action, key, data, reason)
    holding = mediator_load(session).get(edit.key, 0) if kind == "mediators" and not edit.after["active"] else 0
    if holding:
        edit.warnings.append(f"{edit.key}仍有{holding}件在办案件, 请督促办结或改派")
    answer = {"kind": kind, "key": edit.key, "action": action, "record": roster.masked(kind, edit.after),
              "accounts": edit.accounts, "warnings": edit.warnings}
    if not edit.changed:
        return {**answer, "version": version.version, "unchanged": True}
    _write_records(session, edit.changes, uow.now)
    version.version += 1
    version.edits += 1
    summary = json.dumps({"kind": kind, "key": edit.key, "action": action, "changes": edit.changes},
                         sort_keys=True, ensure_ascii=False)
    version.digest = hashlib.sha256(f"{version.digest}:{summary}".encode()).hexdigest()
    version.updated_at = uow.now
    for changed_kind, records in edit.changes.items():
        for record in records:
            before = directory.record(changed_kind, key_of(record))
            if before == record:
                continue
            verb = "created" if before is None else (
                "deactivated" if before.get("active") and record.get("active") is False else "updated")
            session.add(DirectoryChange(version=version.version, at=uow.now, actor=actor.get("id") or "?",
                                        actor_role=actor.get("role") or "?", kind=changed_kind, key=key_of(record),
                                        action=verb, reason=(reason or "")[:500] or None, before=before, after=record))
    label = f"{kind} {edit.key} {action}d by {actor.get('id')}"
    publish_places(uow, changed, version.version, [label])
    _remember_after_commit(session, changed, version.version)
    return {**answer, "version": version.version, "unchanged": False}


def directory_changes(session, *, kind: str | None = None, key: str | None = None, limit: int = 100) -> list[dict]:
    """The audit of the directory, newest first; personal data in before/after masked."""
    query = select(DirectoryChange).order_by(DirectoryChange.id.desc()).limit(max(1, min(limit, 1000)))
    if kind:
        query = query.where(DirectoryChange.kind == kind)
    if key:
        query = query.where(DirectoryChange.key == key)
    return [{"version": row.version, "at": row.at.isoformat(), "actor": row.actor, "actor_role": row.actor_role,
             "kind": row.kind, "key": row.key, "action": row.action, "reason": row.reason,
             "before": roster.masked(row.kind, row.before) if row.before and row.kind != "*" else row.before,
             "after": roster.masked(row.kind, row.after) if row.after and row.kind != "*" else row.after}
            for row in session.scalars(query)]


# --- routing cases ---------------------------------------------------------------------------


def mediator_load(session, *, excluding_case: str | None = None) -> dict[str, int]:
    query = select(OpenAssignment.mediator_id, func.count()).group_by(OpenAssignment.mediator_id)
    if excluding_case:
        query = query.where(OpenAssignment.case_no != excluding_case)
    return dict(session.execute(query).all())


def facts_of(case: dict) -> CaseFacts:
    return CaseFacts(
        case_no=case["case_no"],
        channel=case["source"]["channel"],
        township=case.get("township"),
        village=case.get("village"),
        grid=case.get("grid_code"),
        people_count=case.get("people_count"),
        app_section=case.get("app_section"),
        petition_form=case.get("petition_form"),
        repeat_of_party=bool(case.get("repeat_of_party")),
        centre=case.get("centre"),
        urgent=bool(case.get("urgent")),
    )


def route_new_case(uow, case: dict) -> dict | None:
    """Classify a new case, decide where it goes and who holds it, and emit case_routed."""
    session = uow.session
    state = session.get(RoutedCase, case["case_no"])
    if state is not None and state.attempt >= 1:
        log.info("case %s was routed already; case_received ignored", case["case_no"])
        return None
    facts = facts_of(case)
    classification = classify(case["content"], title=case.get("title") or "", channel=facts.channel,
                              people_count=facts.people_count)
    decision = decide_staffed(facts, classification, current_directory(session), load=mediator_load(session))
    return _route(uow, facts, classification, decision, attempt=1, trigger="received",
                  resolved_on_site=bool(case.get("resolved_on_site")))


def reroute_returned(uow, data: dict) -> dict | None:
    """退单: route again at the same level, to someone who has not held the case before."""
    found = _still_open(uow.session, data, "a return")
    if found is None:
        return None
    state, latest, directory, facts, classification, prior = found
    returned = set(prior.mediators) | set(data.get("exclude_mediators") or [])
    if directory.mediator(data.get("returned_by")):
        returned.add(data["returned_by"])
    returned_units = set(state.returned_units)
    if prior.unit and not prior.mediators and not prior.grid_worker:
        returned_units.add(prior.unit)  # a 归口 case the unit says is not theirs
    who = "、".join(sorted(returned)) or (prior.unit if prior.unit in returned_units else data.get("returned_by"))
    lead = [f"退单: {who}退回第{latest.attempt}次分派, 理由: {data.get('reason') or '未说明'}"]
    at_level, room = prior.level, prior.room
    if prior.level == "grid":
        step = escalate("grid", facts, directory)
        at_level, room = step.level, step.room
        lead += ["网格员无法现场调处, 改由上一级办理", *step.reasons]
    state.returned_mediators = sorted(set(state.returned_mediators) | returned)
    state.returned_units = sorted(returned_units)
    return _route_again(uow, found, "returned", data.get("reason"), lead, "不再指派: ", at_level=at_level, room=room,
                        exclude=returned)


def escalate_case(uow, data: dict) -> dict | None:
    """上报: one level up the chain, to people who have not held the case, with its history."""
    found = _still_open(uow.session, data, "an escalation")
    if found is None:
        return None
    state, latest, directory, facts, _classification, prior = found
    from_level = data.get("from_level") if data.get("from_level") in LEVELS else prior.level
    try:
        step = escalate(from_level, facts, directory)
    except CannotEscalate as exc:
        log.warning("case %s cannot be escalated above %s: %s", state.case_no, from_level, exc)
        return None
    lead = [f"上报: {LEVEL_NAMES[from_level]}调解未果 (第{latest.attempt}次分派), 理由: {data.get('reason') or '未说明'}",
            *step.reasons]
    return _route_again(uow, found, "escalated", data.get("reason"), lead, "此前办理人员不再指派: ",
                        at_level=step.level, room=step.room, exclude=set(data.get("exclude_mediators") or []),
                        escalated_from=from_level)


def _still_open(session, data: dict, what: str):
    """(state, latest decision, directory, facts, classification, prior decision) of the case an
    event is about, or None once the case has ended."""
    state, latest = _latest(session, data["case_no"])
    if state.status != "open":
        log.warning("%s of case %s after it ended (%s) ignored", what, state.case_no, state.status)
        return None
    return (state, latest, current_directory(session), *_stored(latest))


def _route_again(uow, found, trigger: str, reason: str | None, lead: list[str], excluded_note: str, *,
                 at_level: str, room: str | None, exclude: set[str], escalated_from: str | None = None) -> dict:
    """A returned or escalated case: never to anyone who held it or returned it before."""
    state, latest, directory, facts, classification, _prior = found
    exclude = exclude | set(state.handled_by) | set(state.returned_mediators)
    if exclude:
        lead.append(excluded_note + "、".join(sorted(exclude)))
    decision = decide_staffed(facts, classification, directory, exclude_mediators=exclude,
                              exclude_units=state.returned_units, at_level=at_level, room=room,
                              load=mediator_load(uow.session, excluding_case=state.case_no))
    _end(latest, trigger, reason, uow.now)
    return _route(uow, facts, classification, decision, attempt=latest.attempt + 1, trigger=trigger,
                  lead_reasons=lead, escalated_from=escalated_from)


def case_ended(uow, data: dict, status: str) -> None:
    """case_resolved / case_closed: the mediators are free of it (their load drops)."""
    session = uow.session
    case_no = data["case_no"]
    session.execute(delete(OpenAssignment).where(OpenAssignment.case_no == case_no))
    state = session.get(RoutedCase, case_no)
    if state is None:  # closed before routing heard of it (a grid report settled on the spot)
        session.add(RoutedCase(case_no=case_no, attempt=0, status=status, returned_mediators=[],
                               returned_units=[], handled_by=[], updated_at=uow.now))
        return
    if state.status != "closed":
        state.status, state.updated_at = status, uow.now
    latest = session.get(RoutingDecision, (case_no, state.attempt)) if state.attempt else None
    if latest is not None and latest.outcome is None:
        _end(latest, data.get("outcome") or status, data.get("summary"), uow.now)


def choose_mediators(uow, case_no: str, mediator_ids, actor: dict) -> dict:
    """The parties' pick (点将): honoured when valid, else refused naming each mediator's reason."""
    if isinstance(mediator_ids, str):
        mediator_ids = [mediator_ids]
    if not isinstance(mediator_ids, list) or not mediator_ids or len(mediator_ids) > MAX_CHOICE_IDS \
            or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in mediator_ids):
        raise Invalid("choose one or several mediators by id", {
            "mediators": [f"a list of 1 to {MAX_CHOICE_IDS} mediator ids"]})
    session = uow.session
    state = session.get(RoutedCase, case_no)
    if state is None or state.attempt == 0:
        raise NotFound(f"case {case_no} has not been routed (unknown, or just received: try again shortly)")
    latest = session.get(RoutingDecision, (case_no, state.attempt))
    if state.status != "open":
        raise Conflict("案件已办结, 不能再选择调解员", {"case_no": [f"the case is {state.status}"]})
    rules = default_rules()
    directory = current_directory(session)
    facts, classification, prior = _stored(latest)
    if prior.mechanism not in rules.assign_mediators:
        unit = directory.unit(prior.unit)
        raise Conflict(f"归口案件由{unit.name if unit else prior.unit}指派承办人员, 不适用点将",
                       {"mechanism": [prior.mechanism]})
    if tuple(dict.fromkeys(mediator_ids)) == prior.mediators:  # a retried request changes nothing
        return _choice_answer(case_no, latest.attempt, latest.decision, directory, unchanged=True)
    accepted, refused = validate_choice(facts, mediator_ids, directory,
                                        mediator_load(session, excluding_case=case_no), level=prior.level,
                                        exclude_mediators=state.returned_mediators, rules=rules)
    if refused:
        unknown = all(directory.mediator(i) is None for i in refused)
        error = Invalid if unknown else Conflict
        raise error("选择未被接受: " + "; ".join(f"{i}: {why}" for i, why in refused.items()),
                    {i: [why] for i, why in refused.items()})
    lead = directory.mediator(accepted[0])
    level = max(prior.level, SEAT_LEVEL[lead.level], key=LEVELS.index)
    if lead.level == "county":
        centre, room = lead.centre, lead.room
    elif lead.level == "township":
        centre, room = lead.centre, prior.room if level == prior.level else None
    else:
        centre, room = prior.centre, prior.room
    names = "、".join(f"{m.name}({m.id})" for m in map(directory.mediator, accepted))
    mode = "一对一" if len(accepted) == 1 else "多对一"
    reasons = [f"当事人点将({mode}): 选择{names}, 由{lead.name}主调",
               f"提交人: {'当事人' if actor.get('kind') == 'citizen' else actor.get('id')}"]
    if level != prior.level:
        reasons.append(f"层级={LEVEL_NAMES[level]}({level}): 主调调解员属{LEVEL_NAMES[level]}")
    reasons += [reason for reason in prior.reasons if reason.startswith(("机制=", "牵头单位"))]
    decision = replace(prior, level=level, mediators=tuple(accepted), grid_worker=None, centre=centre, room=room,
                       reasons=())
    _end(latest, "reassigned", "当事人点将", uow.now)
    payload = _route(uow, facts, classification, decision, attempt=latest.attempt + 1, trigger="party_choice",
                     lead_reasons=reasons, actor=actor.get("id"),
                     chosen_by="citizen" if actor.get("kind") == "citizen" else actor.get("id"))
    return _choice_answer(case_no, payload["attempt"], payload, directory, unchanged=False)


def _choice_answer(case_no: str, attempt: int, decision: dict, directory: Directory, *, unchanged: bool) -> dict:
    ids = [ref if isinstance(ref, str) else ref["id"] for ref in decision["mediators"]]
    refs = [{"id": m.id, "name": m.name, "level": m.level, "township": m.township}
            for m in map(directory.mediator, ids) if m]
    return {"case_no": case_no, "status": "honoured", "unchanged": unchanged, "attempt": attempt,
            "level": decision["level"], "mechanism": decision["mechanism"],
            "mediator": refs[0] if refs else None, "mediators": refs, "reasons": list(decision["reasons"])}


def _latest(session, case_no: str) -> tuple[RoutedCase, RoutingDecision]:
    state = session.get(RoutedCase, case_no)
    if state is None or state.attempt == 0:
        raise CaseNotRoutedYet(case_no)
    return state, session.get(RoutingDecision, (case_no, state.attempt))


def _end(row: RoutingDecision, outcome: str, reason: str | None, now) -> None:
    row.outcome, row.outcome_reason, row.ended_at = outcome, (reason or "")[:500] or None, now


def _stored(row: RoutingDecision) -> tuple[CaseFacts, Classification, Decision]:
    facts = dict(row.facts)
    facts["party_villages"] = tuple(facts.get("party_villages") or ())
    data = dict(row.classification)
    severity = Severity(**data.pop("severity"))
    classification = Classification(severity=severity, **{**data, "signals": tuple(data["signals"])})
    decision = dict(row.decision)
    plan = decision.get("joint_plan")
    decision.update(
        co_units=tuple(decision["co_units"]), mediators=tuple(decision["mediators"]),
        reasons=tuple(decision["reasons"]),
        joint_plan=JointPlan(**{**plan, "co_units": tuple(plan["co_units"]), "steps": tuple(plan["steps"])})
        if plan else None)
    return CaseFacts(**facts), classification, Decision(**decision)


def _route(uow, facts: CaseFacts, classification: Classification, decision: Decision, *, attempt: int,
           trigger: str, lead_reasons=(), escalated_from: str | None = None, actor: str | None = None,
           chosen_by: str | None = None, resolved_on_site: bool = False) -> dict:
    """Record one routing of a case, update its holders' load, and emit case_routed."""
    session = uow.session
    directory = current_directory(session)
    reasons = [*lead_reasons, *decision.reasons]
    decision = replace(decision, reasons=tuple(reasons))
    history = [_previous(row) for row in session.scalars(
        select(RoutingDecision).where(RoutingDecision.case_no == facts.case_no).order_by(RoutingDecision.attempt))]
    session.add(RoutingDecision(
        case_no=facts.case_no, attempt=attempt, facts=asdict(facts), classification=_plain(classification),
        decision=decision.to_dict(), created_at=uow.now, trigger=trigger, actor=actor,
        outcome="resolved_on_site" if resolved_on_site else None, ended_at=uow.now if resolved_on_site else None,
    ))
    state = session.get(RoutedCase, facts.case_no)
    if state is None:
        state = RoutedCase(case_no=facts.case_no, status="open", returned_mediators=[], returned_units=[],
                           handled_by=[])
        session.add(state)
    holders = [*decision.mediators, *([decision.grid_worker] if decision.grid_worker else [])]
    state.attempt, state.updated_at = attempt, uow.now
    state.handled_by = list(dict.fromkeys([*(state.handled_by or []), *holders]))
    if resolved_on_site and state.status == "open":
        state.status = "resolved"
    session.execute(delete(OpenAssignment).where(OpenAssignment.case_no == facts.case_no))
    if state.status == "open":
        for mediator_id in decision.mediators:
            session.add(OpenAssignment(case_no=facts.case_no, mediator_id=mediator_id, opened_at=uow.now))
    refs = staff_refs(decision, directory, contacts=True)
    payload = {
        "case_no": facts.case_no,
        "attempt": attempt,
        "trigger": trigger,
        "level": decision.level,
        "mechanism": decision.mechanism,
        "township": decision.township,
        "village": decision.village,
        "centre": decision.centre,
        "room": decision.room,
        "unit": refs["unit"],
        "co_units": refs["co_units"],
        "mediator": refs["mediators"][0] if refs["mediators"] else None,
        "mediators": refs["mediators"],
        "supervisors": refs["supervisors"],
        "joint_plan": decision.to_dict()["joint_plan"],
        "dispute_type": classification.dispute_type,
        "gov_category": classification.gov_category,
        "psych_needed": decision.psych_needed,
        "severity": {**asdict(classification.severity), "major": decision.major},
        "signals": list(classification.signals),
        "confidence": classification.confidence,
        "reasons": reasons,
        "escalated_from": escalated_from,
        "chosen_by": chosen_by,
        "resolved_on_site": resolved_on_site,
        "history": history,
    }
    uow.emit("case_routed", payload, correlation_id=facts.case_no)
    return payload


def _previous(row: RoutingDecision) -> dict:
    decision = row.decision
    people = list(decision["mediators"]) or ([decision["grid_worker"]] if decision.get("grid_worker") else [])
    return {"attempt": row.attempt, "trigger": row.trigger, "level": decision["level"],
            "mechanism": decision["mechanism"], "unit": decision.get("unit"), "mediators": people,
            "routed_at": row.created_at, "outcome": row.outcome, "outcome_reason": row.outcome_reason,
            "ended_at": row.ended_at}


def _plain(classification) -> dict:
    data = asdict(classification)
    data["signals"] = list(data["signals"])
    return data


def case_routing(session, case_no: str) -> dict:
    """Every routing of a case, with its reasons and how it ended (staff's explanation view)."""
    rows = session.scalars(select(RoutingDecision).where(RoutingDecision.case_no == case_no)
                           .order_by(RoutingDecision.attempt)).all()
    if not rows:
        raise NotFound(f"case {case_no} has not been routed")
    state = session.get(RoutedCase, case_no)
    first = rows[0].classification
    return {
        "case_no": case_no,
        "status": state.status if state else "open",
        "dispute_type": first["dispute_type"], "gov_category": first["gov_category"],
        "confidence": first["confidence"], "severity": first["severity"], "signals": first["signals"],
        "returned_by": state.returned_mediators if state else [],
        "attempts": [{**_previous(row), "routed_at": row.created_at.isoformat(),
                      "ended_at": row.ended_at.isoformat() if row.ended_at else None,
                      "actor": row.actor, "centre": row.decision.get("centre"), "room": row.decision.get("room"),
                      "co_units": row.decision.get("co_units", []), "reasons": row.decision["reasons"]}
                     for row in rows],
    }


# --- queries for the gateway -------------------------------------------------------------------


def explain_item(session, item) -> dict:
    try:
        return explain(item, current_directory(session))
    except ItemInvalid as exc:
        raise Invalid("the text cannot be classified", exc.fields) from exc


def mediator_detail(session, mediator_id: str) -> dict:
    directory = current_directory(session)
    mediator = directory.mediator(mediator_id)
    if mediator is None:
        raise NotFound(f"no mediator {mediator_id!r} in the directory")
    return views.mediator_view(directory, mediator, mediator_load(session))
