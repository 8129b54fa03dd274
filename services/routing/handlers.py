"""Routing's use cases over its own database; no nameko here (service.py is the thin shell)."""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict

from sqlalchemy import delete, func, insert, select

from services.routing.classify import classify
from services.routing.decide import CaseFacts, decide, staff_refs
from services.routing.directory import Directory
from services.routing.models import DirectoryRecord, DirectoryVersion, OpenAssignment, RoutingDecision

_directories: dict[str, tuple[int, Directory]] = {}


class DirectoryMissing(RuntimeError):
    pass


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
    directory = Directory.from_records(records)
    _directories[key] = (row.version, directory)
    return directory


def replace_directory(uow, directory: Directory, changed: str) -> bool:
    """Store a whole directory; bump the version and tell intake if anything changed."""
    records = directory.to_records()
    digest = hashlib.sha256(json.dumps(records, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    session = uow.session
    version = session.get(DirectoryVersion, 1)
    if version is not None and version.digest == digest:
        return False
    session.execute(delete(DirectoryRecord))
    session.execute(insert(DirectoryRecord), [
        {"kind": kind, "code": key_of(record), "data": record, "updated_at": uow.now}
        for kind, items in records.items() for record in items
    ])
    if version is None:
        version = DirectoryVersion(id=1, version=0, digest=digest, updated_at=uow.now)
        session.add(version)
    version.version += 1
    version.digest, version.updated_at = digest, uow.now
    session.flush()
    publish_places(uow, directory, version.version, [changed])
    return True


def publish_places(uow, directory: Directory, version: int, changed: list[str]) -> None:
    uow.emit("directory_updated", {"version": version, "places": directory.places_snapshot(), "changed": changed},
             correlation_id=None)


def mediator_load(session) -> dict[str, int]:
    rows = session.execute(select(OpenAssignment.mediator_id, func.count()).group_by(OpenAssignment.mediator_id))
    return dict(rows.all())


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
    )


def route_new_case(uow, case: dict) -> dict:
    """Classify a new case, decide where it goes and who handles it, and emit case_routed."""
    facts = facts_of(case)
    classification = classify(case["content"], title=case.get("title") or "", channel=facts.channel,
                              people_count=facts.people_count)
    return _route(uow, facts, classification, attempt=1)


def _route(uow, facts: CaseFacts, classification, *, attempt: int, exclude=(), at_level=None, room=None) -> dict:
    session = uow.session
    directory = current_directory(session)
    decision = decide(facts, classification, directory, exclude_mediators=exclude, at_level=at_level, room=room,
                      load=mediator_load(session))
    refs = staff_refs(decision, directory)
    for ref in refs["mediators"]:
        person = directory.mediator(ref["id"]) or directory.grid_worker(ref["id"])
        ref["phone"] = person.phone if person else None
    session.add(RoutingDecision(
        case_no=facts.case_no, attempt=attempt, facts=asdict(facts), classification=_plain(classification),
        decision=decision.to_dict(), created_at=uow.now,
    ))
    session.execute(delete(OpenAssignment).where(OpenAssignment.case_no == facts.case_no))
    for mediator_id in decision.mediators:
        session.add(OpenAssignment(case_no=facts.case_no, mediator_id=mediator_id, opened_at=uow.now))
    payload = {
        "case_no": facts.case_no,
        "attempt": attempt,
        "level": decision.level,
        "mechanism": decision.mechanism,
        "township": decision.township,
        "unit": refs["unit"],
        "co_units": refs["co_units"],
        "mediators": refs["mediators"],
        "joint_plan": decision.to_dict()["joint_plan"],
        "dispute_type": classification.dispute_type,
        "gov_category": classification.gov_category,
        "psych_needed": decision.psych_needed,
        "severity": asdict(classification.severity),
        "signals": list(classification.signals),
        "confidence": classification.confidence,
        "reasons": list(decision.reasons),
    }
    uow.emit("case_routed", payload, correlation_id=facts.case_no)
    return payload


def _plain(classification) -> dict:
    data = asdict(classification)
    data["signals"] = list(data["signals"])
    return data
