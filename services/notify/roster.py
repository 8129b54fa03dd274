"""The duty roster: who notify reaches when an event names nobody. Pure; no I/O.

Roles:
    on_duty            值班: wakes up for `case_urgent`, per township and for the county
    supervisor         hears of overdue cases, supervision and accountability when the
                       event carries no supervisors (the township's, else the county's)
    psych_coordinator  hears when no counsellor matches (the county's; none named: the
                       county supervisors)

An entry with a start or an end is a shift (an evening or weekend 值班); one without is
standing duty. At a given moment the shifts that cover it take precedence over standing
duty for the same role and place, so a roster can say "the head is on duty, except tonight
it is Wang" without editing the head's entry.

Defaults (seeded from the directory's staff, re-seeded whenever it changes, never touching
entries made through the API): each township head is on duty for and supervises their
township; each county supervisor is on duty for and supervises the county; each psych
coordinator coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

ROLES = ("on_duty", "supervisor", "psych_coordinator")
COUNTY = None

DEFAULT_DUTIES: dict[str, tuple[tuple[str, bool], ...]] = {
    # directory role -> (roster role, scoped to their township?)
    "township_head": (("on_duty", True), ("supervisor", True)),
    "county_supervisor": (("on_duty", False), ("supervisor", False)),
    "psych_coordinator": (("psych_coordinator", False),),
}


@dataclass(frozen=True)
class Entry:
    role: str
    township: str | None
    staff_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    app_user_id: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def is_shift(self) -> bool:
        return self.starts_at is not None or self.ends_at is not None

    def covers(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (self.ends_at is None or at < self.ends_at)

    def person(self) -> dict:
        """The planner's Person mapping (rules.py)."""
        return {"id": self.staff_id, "name": self.name, "role": self.role, "phone": self.phone,
                "email": self.email, "app_user_id": self.app_user_id or self.staff_id}


def on_duty_at(entries: Iterable[Entry], at: datetime) -> list[Entry]:
    """Who of these entries (one role, one place) is on duty at `at`: the covering shifts,
    else the standing entries. One entry per person."""
    active = [e for e in entries if e.covers(at)]
    chosen = [e for e in active if e.is_shift] or [e for e in active if not e.is_shift]
    seen: dict[str, Entry] = {}
    for entry in chosen:
        seen.setdefault(entry.staff_id, entry)
    return list(seen.values())


def default_entries(staff: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """The default roster for the directory's staff records.

    A record: {id or username, name or display_name, role, township, phone?, email?,
    app_user_id?}. Records of other roles, and township heads without a township, are skipped.
    """
    entries: list[Entry] = []
    for record in staff:
        duties = DEFAULT_DUTIES.get(record.get("role") or "")
        staff_id = record.get("id") or record.get("username")
        if not duties or not staff_id:
            continue
        township = record.get("township")
        for role, scoped in duties:
            if scoped and not township:
                continue
            entries.append(Entry(role=role, township=township if scoped else COUNTY, staff_id=str(staff_id),
                                 name=record.get("name") or record.get("display_name"),
                                 phone=record.get("phone") or None, email=record.get("email") or None,
                                 app_user_id=record.get("app_user_id") or None))
    return entries
