"""From a contract event to the planner's input (the plain dict rules.py documents).

Pure: the service passes what it remembers of the case (`Known`) and how to name a place.
The producers' payloads (services/contracts/{intake,mediation,psych}.py) differ from the
planner's vocabulary; this is the one place that knows both:

- people: a contract `Person` (a citizen) or `StaffRef` becomes a planner Person mapping.
  A citizen never keeps an id number; their recipient id is a keyed hash of their phone
  (rules.Person), so an opt-out made with case number + phone finds them again. Staff keep
  their directory id; the app-push target of a staff member is their directory id unless
  the event names an app account.
- an empty people list means "not in the event", so the planner falls back to what notify
  knows (its case memory and duty roster) instead of reaching nobody;
- citizen events reach every complainant notify knows of for the case (merged sources
  included), plus the one the event names;
- places: events carry codes; messages show names (`township_code` stays for the lookups).

Optional contract fields may be absent: producers are completing their payloads in parallel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from services.common import privacy


@dataclass
class Known:
    """What notify remembers of a case (models.CasePeople)."""

    complainants: list[dict] = field(default_factory=list)
    assignees: list[dict] = field(default_factory=list)
    township: str | None = None
    village: str | None = None
    dispute_type: str | None = None
    urgent: bool = False


def citizen(person: Mapping[str, Any] | None) -> dict | None:
    """A complainant as the planner addresses them; None when they cannot be reached at all."""
    if not person:
        return None
    phone = person.get("phone")
    app_user = person.get("user_id") or person.get("app_user_id")
    if not phone and not app_user:
        return None
    mapped = {"name": person.get("name"), "role": "citizen", "phone": phone, "app_user_id": app_user}
    if not phone:   # reachable by the app only: a stable id that does not show the account
        mapped["id"] = "citizen-app-" + privacy.keyed_hash(str(app_user), "app")[:24]
    return mapped


def citizen_id(person: Mapping[str, Any]) -> str:
    """The recipient id the planner gives this citizen (see rules.Person.from_mapping)."""
    if person.get("id"):
        return str(person["id"])
    return "citizen-" + privacy.keyed_hash(person["phone"], "phone")[:24]


def staff(ref: Mapping[str, Any] | None) -> dict | None:
    if not ref or not ref.get("id"):
        return None
    return {"id": str(ref["id"]), "name": ref.get("name"), "role": ref.get("role"), "phone": ref.get("phone"),
            "email": ref.get("email"), "app_user_id": ref.get("app_user_id") or ref.get("user_id") or ref["id"]}


def staff_list(*groups: Iterable[Mapping[str, Any]] | Mapping[str, Any] | None) -> list[dict] | None:
    """The people of the first non-empty group; None (not in the event) when all are empty."""
    for group in groups:
        if isinstance(group, Mapping):
            group = [group]
        people = [p for p in (staff(ref) for ref in group or ()) if p]
        if people:
            return _unique(people, key=lambda p: p["id"])
    return None


def complainants(known: Known, *named: Mapping[str, Any] | None) -> list[dict] | None:
    people = [p for p in (citizen(c) for c in [*known.complainants, *named]) if p]
    return _unique(people, key=citizen_id) or None


def _unique(people: list[dict], key: Callable[[dict], str]) -> list[dict]:
    seen: dict[str, dict] = {}
    for person in people:
        seen.setdefault(key(person), person)
    return list(seen.values())


def rating_url(data: Mapping[str, Any], template: str) -> str | None:
    if data.get("rating_url"):
        return data["rating_url"]
    token = data.get("rating_token")
    return template.format(token=token) if token else None


def signal_categories(signals: Iterable[str]) -> list[str]:
    """intake's "<category>: <matched text>" signals -> the categories, in order, once each."""
    seen: list[str] = []
    for signal in signals or ():
        category = str(signal).split(":", 1)[0].strip()
        if category and category not in seen:
            seen.append(category)
    return seen


def event_input(event_type: str, data: Mapping[str, Any], *, event_id: str, occurred_at, case_no: str | None,
                known: Known, place_name: Callable[[str | None], str | None], rating_url_template: str) -> dict:
    """The planner's input for one contract event (rules.py documents the shapes)."""
    d = dict(data)
    township_code = d.get("township") or known.township
    village_code = d.get("village") or known.village
    out: dict[str, Any] = {
        "event_id": event_id,
        "case_no": case_no or d.get("case_no"),
        "occurred_at": occurred_at,
        "township_code": township_code,
        "township": place_name(township_code) if township_code else None,
        "village": place_name(village_code) if village_code else None,
        "dispute_type": d.get("dispute_type") or known.dispute_type,
        "summary": None,
        "urgent": bool(d.get("urgent")) or d.get("priority") == "urgent",
    }
    source = d.get("source") or {}
    if event_type in ("case_received", "case_merged"):
        # [] reaches nobody (not even the remembered complainants); a grid report settled on the
        # spot is not told "a mediator will be assigned": its resolution notice follows instead
        on_site = event_type == "case_received" and d.get("resolved_on_site")
        out["complainant"] = [] if on_site else [p for p in [citizen(source.get("complainant"))] if p]
        out["occurred_at"] = d.get("accepted_at") or occurred_at
    elif event_type == "case_urgent":
        out.update(signal=signal_categories(d.get("signals")) or ["紧急情况"], summary=d.get("summary"), urgent=True,
                   occurred_at=d.get("detected_at") or occurred_at)
    elif event_type == "case_assigned":
        out.update(assignees=staff_list(d.get("assignees"), d.get("unit")), deadline=d.get("handling_deadline"),
                   sign_off_by=d.get("sign_off_deadline"), level=d.get("level"), mechanism=d.get("mechanism"),
                   urgent=out["urgent"] or known.urgent)
    elif event_type == "case_accepted":
        out["complainant"] = complainants(known, d.get("complainant"))
        out["deadline"] = d.get("handling_deadline")
    elif event_type == "reminder_due":
        out.update(assignees=staff_list(d.get("assignees")), deadline=d.get("deadline"), stage=d.get("stage"),
                   deadline_kind=d.get("deadline_kind"))
    elif event_type == "case_overdue":
        out.update(assignees=staff_list(d.get("assignees"), d.get("unit")), supervisors=staff_list(d.get("supervisors")),
                   deadline=d.get("deadline"), grade=d.get("grade"), deadline_kind=d.get("deadline_kind"))
    elif event_type == "supervision_opened":
        out.update(units=staff_list(d.get("units"), d.get("unit"), d.get("assignees"), known.assignees),
                   supervisors=staff_list(d.get("supervisors"), d.get("supervisor")),
                   reason=d.get("reason"), deadline=d.get("deadline"))
    elif event_type == "accountability_recorded":
        out.update(units=staff_list(d.get("against"), d.get("units")), supervisors=staff_list(d.get("supervisors")),
                   measure=d.get("measure") or d.get("grade"), reason=d.get("reason"))
    elif event_type == "extension_requested":
        out.update(supervisors=staff_list(d.get("supervisors")), extension=d.get("extension"), reason=d.get("reason"),
                   deadline=d.get("handling_deadline"))
    elif event_type == "extension_decided":
        out.update(assignees=staff_list(d.get("assignees")), approved=d.get("approved"), reason=d.get("reason"),
                   deadline=d.get("deadline") or d.get("handling_deadline"))
    elif event_type in ("case_resolved", "evaluation_requested", "case_closed"):
        out.update(complainant=complainants(known, d.get("complainant")), outcome=d.get("outcome"),
                   rating_url=rating_url(d, rating_url_template))
    elif event_type == "case_evaluated":
        out.update(assignees=staff_list(d.get("assignees")), rating=d.get("rating"), comment=d.get("comment"))
    elif event_type == "counsellor_offered":
        out.update(counsellor=staff(d.get("counsellor")), respond_by=d.get("expires_at") or d.get("respond_by"),
                   priority="urgent" if d.get("urgent") else "normal", need=d.get("need"))
    elif event_type == "counsellor_assigned":
        out.update(counsellor=staff(d.get("counsellor")), assignees=staff_list(d.get("mediators"), d.get("assignees")))
    elif event_type == "psych_unmatched":
        out.update(coordinators=staff_list(d.get("coordinator"), d.get("coordinators")), reason=d.get("reason"),
                   priority="urgent" if d.get("urgent") else "normal", need=d.get("need"))
    return out
