from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone

from services.common.messaging import EventHandler
from services.contracts.catalogue import consumed_by
from services.notify.roster import Entry, default_entries, on_duty_at
from services.notify.service import NotifyService

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc)   # 22:00 in Lanling


def test_every_event_the_catalogue_lists_for_notify_has_a_handler():
    handled = {ep.event_type for _, method in inspect.getmembers(NotifyService)
               for ep in getattr(method, "nameko_entrypoints", ()) if isinstance(ep, EventHandler)}
    assert handled == {spec.name for spec in consumed_by("notify")}


def test_a_shift_covering_the_moment_takes_precedence_over_standing_duty():
    head = Entry("on_duty", "371324-001", "head-001", "张博军")
    tonight = Entry("on_duty", "371324-001", "duty-wang", "王强", starts_at=NOW - timedelta(hours=2),
                    ends_at=NOW + timedelta(hours=10))
    yesterday = Entry("on_duty", "371324-001", "duty-li", "李明", starts_at=NOW - timedelta(days=1, hours=2),
                      ends_at=NOW - timedelta(hours=14))
    assert on_duty_at([head, tonight, yesterday], NOW) == [tonight]
    assert on_duty_at([head, tonight, yesterday], NOW + timedelta(hours=11)) == [head]
    assert on_duty_at([head, head], NOW) == [head]
    assert on_duty_at([], NOW) == []


def test_an_open_ended_shift_counts_from_its_start():
    from_now = Entry("on_duty", None, "sup-1", starts_at=NOW)
    assert on_duty_at([from_now], NOW) == [from_now]
    assert on_duty_at([from_now], NOW - timedelta(seconds=1)) == []


def test_defaults_put_heads_on_their_township_and_county_supervisors_on_the_county():
    staff = [
        {"username": "head-001", "role": "township_head", "township": "371324-001", "display_name": "张博军"},
        {"id": "SUP-1", "role": "county_supervisor", "name": "刘凯连", "phone": "13705393001"},
        {"id": "PC-1", "role": "psych_coordinator", "name": "周敏"},
        {"username": "mc-01-1", "role": "mediator"},
        {"username": "head-x", "role": "township_head", "township": None},
    ]
    entries = {(e.role, e.township, e.staff_id) for e in default_entries(staff)}
    assert entries == {("on_duty", "371324-001", "head-001"), ("supervisor", "371324-001", "head-001"),
                       ("on_duty", None, "SUP-1"), ("supervisor", None, "SUP-1"), ("psych_coordinator", None, "PC-1")}
    sup = next(e for e in default_entries(staff) if e.staff_id == "SUP-1")
    assert sup.person() == {"id": "SUP-1", "name": "刘凯连", "role": "on_duty", "phone": "13705393001",
                            "email": None, "app_user_id": "SUP-1"}
