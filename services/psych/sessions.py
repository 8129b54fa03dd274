"""Intervention sessions, follow-ups and case outcomes, and who may read session notes.

Notes are confidential: only the counsellor who wrote them and the county psych
coordinator may read them. The service stores them encrypted (services.common.privacy)
and the gateway checks `can_read_notes` before showing them; every other view, and
the `psych_session_recorded` event, uses `public_view`, which leaves them out.

Pure domain: times are aware datetimes passed in.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Mapping, Sequence

from services.psych.match import RULES_PATH, load_rules_document

SESSION_KINDS = ("first", "follow_up", "crisis")
OUTCOMES = {  # outcome -> whether at least one session must have happened
    "stabilised": True,               # 情绪平稳，干预结束
    "referred_to_hospital": False,    # 转介医院（精神卫生机构）
    "referred_to_other_service": False,  # 转介其他服务（法律援助、民政救助等）
    "declined_by_party": False,       # 当事人拒绝干预
    "closed_no_need": False,          # 评估后无需干预
    "lost_contact": False,            # 多次联系不上
}
COORDINATOR_ROLE = "psych_coordinator"
COUNSELLOR_ROLE = "counsellor"


@dataclass(frozen=True)
class Session:
    case_no: str
    counsellor_id: str
    at: datetime
    kind: str                          # first | follow_up | crisis
    notes: str                         # confidential; plaintext only inside the domain
    next_follow_up: datetime | None = None


@lru_cache(maxsize=8)
def _follow_up_after(path: str) -> Mapping[str, timedelta]:
    hours = load_rules_document(path)["follow_up"]["after_hours"]
    return {kind: timedelta(hours=hours[kind]) for kind in SESSION_KINDS}


def default_next_follow_up(kind: str, at: datetime) -> datetime:
    """The follow-up date the rules suggest after a session of this kind."""
    return at + _follow_up_after(str(RULES_PATH))[kind]


def new_session(case_no: str, counsellor_id: str, at: datetime, kind: str, notes: str,
                next_follow_up: datetime | None = None) -> Session:
    """A session with the default follow-up filled in when the counsellor gave none."""
    if kind not in SESSION_KINDS:
        raise ValueError(f"kind must be one of {SESSION_KINDS}")
    return Session(case_no, counsellor_id, at, kind, notes, next_follow_up or default_next_follow_up(kind, at))


def check_session(session: Session, *, assigned_counsellor_id: str | None, earlier: Sequence[Session],
                  now: datetime, outcome: str | None = None) -> dict[str, list[str]]:
    """Problems per field (empty when the session may be recorded), for a 400 answer."""
    problems: dict[str, list[str]] = {}

    def problem(name: str, text: str) -> None:
        problems.setdefault(name, []).append(text)

    if outcome is not None:
        problem("case_no", f"the case is closed with outcome {outcome}")
    if assigned_counsellor_id is None:
        problem("case_no", "no counsellor is assigned to this case")
    elif session.counsellor_id != assigned_counsellor_id:
        problem("counsellor_id", "only the assigned counsellor records sessions")
    if session.kind not in SESSION_KINDS:
        problem("kind", f"must be one of {SESSION_KINDS}")
    elif session.kind == "first" and earlier:
        problem("kind", "the case already has a first session")
    elif session.kind == "follow_up" and not earlier:
        problem("kind", "a follow-up needs an earlier session")
    if session.at > now:
        problem("at", "must not be in the future")
    if session.next_follow_up is not None and session.next_follow_up <= session.at:
        problem("next_follow_up", "must be after the session")
    if not session.notes.strip():
        problem("notes", "must not be empty")
    return problems


def follow_up_due(sessions: Sequence[Session], outcome: str | None = None) -> datetime | None:
    """When the next follow-up is due: the latest session's date, unless the case has an outcome."""
    if outcome is not None or not sessions:
        return None
    return max(sessions, key=lambda s: s.at).next_follow_up


def follow_up_overdue(sessions: Sequence[Session], now: datetime, outcome: str | None = None) -> bool:
    due = follow_up_due(sessions, outcome)
    return due is not None and now > due


def check_outcome(outcome: str, sessions: Sequence[Session]) -> list[str]:
    """Reasons the case cannot end with this outcome; empty when it can."""
    if outcome not in OUTCOMES:
        return [f"outcome must be one of {tuple(OUTCOMES)}"]
    if OUTCOMES[outcome] and not sessions:
        return [f"{outcome} needs at least one recorded session"]
    return []


def can_read_notes(actor_role: str, actor_id: str | None, session: Session) -> bool:
    """Only the counsellor who wrote the notes and the psych coordinator may read them."""
    if actor_role == COORDINATOR_ROLE:
        return True
    return actor_role == COUNSELLOR_ROLE and actor_id is not None and actor_id == session.counsellor_id


def public_view(session: Session) -> dict:
    """Everything about a session except its notes: for events, timelines and other readers."""
    return {
        "case_no": session.case_no,
        "counsellor_id": session.counsellor_id,
        "at": session.at.isoformat(),
        "kind": session.kind,
        "next_follow_up": session.next_follow_up.isoformat() if session.next_follow_up else None,
    }


def view_for(actor_role: str, actor_id: str | None, session: Session) -> dict:
    """The session as this actor may see it: with notes only when `can_read_notes` allows."""
    view = public_view(session)
    if can_read_notes(actor_role, actor_id, session):
        view["notes"] = session.notes
    return view

