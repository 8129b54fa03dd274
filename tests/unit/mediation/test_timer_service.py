"""The deadline timer on a real database: reminders, grades, supervision, accountability, catch-up."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from services.mediation import handlers, timers
from services.mediation.models import Accountability, Supervision, TimerFiring
from services.mediation.store import load_state
from tests.unit.mediation.conftest import MEDIATOR, later

CASE = "371324-20260302-000001"


def firings(desk) -> list[str]:
    with desk.db.reading() as session:
        return list(session.scalars(select(TimerFiring.key).order_by(TimerFiring.fired_at, TimerFiring.key)))


def expected_keys(desk, case_no) -> set[str]:
    with desk.db.reading() as session:
        from services.mediation.models import CaseRecord
        state = load_state(session.get(CaseRecord, case_no).state)
    return {a.key for a in handlers.schedule_of(state) if a.fire_at <= desk.clock.now()}


def test_a_forgotten_case_gets_reminders_grades_supervision_and_accountability_in_order(desk):
    desk.received(CASE)                      # hotline: sign off in 1 working day, handle in 5
    desk.routed(CASE)
    assert desk.tick() == 0
    later(desk, days=1, hours=6)             # Tuesday 15:00: 75% of the sign-off day has passed
    desk.tick()
    assert [e.data["stage"] for e in desk.events("reminder_due")] == ["before"]
    reminder = desk.events("reminder_due")[0].data
    assert reminder["deadline_kind"] == "sign_off" and reminder["assignees"][0]["id"] == "M-005-1"
    later(desk, days=30)                     # nobody did anything for a month
    desk.tick()
    grades = [(e.data["deadline_kind"], e.data["grade"]) for e in desk.events("case_overdue")]
    assert ("sign_off", "overdue") in grades and ("sign_off", "seriously_overdue") in grades
    assert ("handling", "seriously_overdue") in grades
    supervision = desk.events("supervision_opened")[0].data
    assert supervision["supervisor"]["id"] == "TH-005" and supervision["units"][0]["id"] == "M-005-1"
    accountability = desk.events("accountability_recorded")[0].data
    assert accountability["against"]["id"] == "M-005-1" and accountability["measure"] == "通报批评"
    assert accountability["supervisors"][1]["email"] == "cs1@example.org"
    with desk.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Supervision)) == 2      # sign_off + handling
        assert session.scalar(select(func.count()).select_from(Accountability)) == 2
    view = desk.view(CASE)
    assert view["overdue_grade"] == "seriously_overdue"
    # each key once, and everything that was due has fired
    keys = firings(desk)
    assert len(keys) == len(set(keys)) and set(keys) == expected_keys(desk, CASE)
    assert desk.tick() == 0
    # met deadlines stop the ladder: accepting late sends no more reminders for sign-off
    desk.act(CASE, "accept", MEDIATOR)
    assert desk.events("case_accepted")[0].data["late"] is True


def test_catch_up_after_downtime_fires_each_missed_action_once_in_order(desk):
    desk.received(CASE, channel="app")       # township: sign off in 1 working day, handle in 7
    desk.routed(CASE)
    desk.act(CASE, "accept", MEDIATOR)
    later(desk, days=40)                     # the service was down past every deadline
    desk.tick()
    keys = firings(desk)
    assert set(keys) == expected_keys(desk, CASE) and len(keys) == len(set(keys))
    grades = [e.data["grade"] for e in desk.events("case_overdue")]
    assert grades == ["warning", "overdue", "seriously_overdue"]          # in the order they came due
    events = [e.type for e in desk.events() if e.type in timers.EVENTS.values()]
    assert events.index("case_overdue") < events.index("supervision_opened") < events.index("accountability_recorded")
    counts = Counter(e.type for e in desk.events())
    assert counts["supervision_opened"] == 1 and counts["accountability_recorded"] == 1
    # no stale 催办 for a sign-off that was met in time
    assert all(e.data["deadline_kind"] == "handling" for e in desk.events("reminder_due"))
    later(desk, days=1)
    assert desk.tick() == 0 and len(firings(desk)) == len(keys)


def test_no_rating_reminds_once_then_closes(desk):
    desk.received(CASE, channel="app")
    desk.routed(CASE)
    desk.act(CASE, "accept", MEDIATOR)
    desk.act(CASE, "record_session", MEDIATOR, mode="online", attendees=["王秀英"], notes="n")
    desk.act(CASE, "resolve", MEDIATOR, terms=["和解"])
    token = desk.events("case_resolved")[0].data["rating_token"]
    later(desk, days=2)
    desk.tick()
    assert not desk.events("evaluation_requested")
    later(desk, days=2)
    desk.tick()
    requested = desk.events("evaluation_requested")
    assert len(requested) == 1 and requested[0].data["rating_token"] == token
    later(desk, days=7)
    desk.tick()
    assert desk.view(CASE)["status"] == "closed"
    assert desk.events("case_closed")[0].data["rating"] is None
