"""The pure timer: what fires when, exactly once, in order, across downtime."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.mediation import deadlines, timers
from services.mediation.deadlines import SHANGHAI
from services.mediation.timers import CaseDeadlines, Deadline, TimerPolicy, TimerRules, due_actions

CALENDAR = deadlines.default_calendar()
RULES = timers.default_rules()


def at(y, m, d, hh, mm=0, ss=0):
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI).astimezone(timezone.utc)


# Assigned Thursday Feb 12 2026 10:00, just before Spring Festival (Feb 15-23 off).
ASSIGNED = at(2026, 2, 12, 10)
SIGN_OFF_DUE = at(2026, 2, 13, 17, 30)      # 1 working day
HANDLING_DUE = at(2026, 2, 28, 17, 30)      # 7 working days: 13, 14 (make-up), 24-28 (28 a make-up Saturday)


def township_case(**changes) -> CaseDeadlines:
    base = CaseDeadlines(
        case_no="371324-20260212-000007", unit="unit-bz", mediator="m-1", level="township", township="卞庄街道",
        deadlines=(Deadline("sign_off", ASSIGNED, SIGN_OFF_DUE), Deadline("handling", ASSIGNED, HANDLING_DUE)),
    )
    return CaseDeadlines(**{**base.__dict__, **changes})


# Worked out by hand from the defaults in rules/limits.yaml (office hours 08:30-17:30):
#  sign_off: 16.5 working hours (Thu 7.5 + Fri 9). 75% = 12h22m30s -> Fri 13:22:30.
#    seriously overdue: 2 working days after the deadline -> Sat Feb 14 (make-up), Tue Feb 24.
#  handling: 70.5 working hours (Thu 7.5 + 7 days x 9). 75% = 52h52m30s -> Fri Feb 27 08:52:30;
#    90% = 63h27m -> Sat Feb 28 10:27; seriously overdue = min(+35h15m -> Thu Mar 5 16:45, +5 wd -> Mar 6).
EXPECTED = [
    ("sign_off", "reminder_before", at(2026, 2, 13, 13, 22, 30)),
    ("sign_off", "reminder_at_deadline", SIGN_OFF_DUE),
    ("sign_off", "overdue", SIGN_OFF_DUE),
    ("sign_off", "supervision", SIGN_OFF_DUE),
    ("sign_off", "seriously_overdue", at(2026, 2, 24, 17, 30)),
    ("sign_off", "accountability", at(2026, 2, 24, 17, 30)),
    ("handling", "reminder_before", at(2026, 2, 27, 8, 52, 30)),
    ("handling", "warning", at(2026, 2, 28, 10, 27)),
    ("handling", "reminder_at_deadline", HANDLING_DUE),
    ("handling", "overdue", HANDLING_DUE),
    ("handling", "supervision", HANDLING_DUE),
    ("handling", "seriously_overdue", at(2026, 3, 5, 16, 45)),
    ("handling", "accountability", at(2026, 3, 5, 16, 45)),
]


def summary(actions):
    return [(a.payload["deadline"], a.step, a.fire_at) for a in actions]


def test_schedule_matches_the_hand_computed_ladder():
    assert summary(timers.schedule(township_case(), RULES, CALENDAR)) == EXPECTED


def test_nothing_is_due_before_the_first_reminder():
    assert due_actions(township_case(), set(), at(2026, 2, 13, 13, 22), RULES, CALENDAR) == []


def test_catch_up_after_downtime_fires_every_missed_action_once_in_order():
    case = township_case()
    fired: set[str] = set()
    # Running normally until Friday noon: nothing yet (the first reminder is at 13:22:30).
    assert due_actions(case, fired, at(2026, 2, 13, 12), RULES, CALENDAR) == []
    # Down from Friday noon until March 1st, then the timer comes back.
    caught_up = due_actions(case, fired, at(2026, 3, 1, 9), RULES, CALENDAR)
    assert summary(caught_up) == EXPECTED[:11]
    fired |= {a.key for a in caught_up}
    assert due_actions(case, fired, at(2026, 3, 1, 9), RULES, CALENDAR) == []
    later = due_actions(case, fired, at(2026, 3, 10, 9), RULES, CALENDAR)
    assert summary(later) == EXPECTED[11:]


def test_ticking_every_half_hour_fires_the_same_actions_as_one_catch_up():
    case = township_case()
    fired: list[str] = []
    now = ASSIGNED
    while now < at(2026, 3, 10, 9):
        fired += [a.key for a in due_actions(case, fired, now, RULES, CALENDAR)]
        now += timedelta(minutes=30)
    one_shot = [a.key for a in due_actions(case, set(), at(2026, 3, 10, 9), RULES, CALENDAR)]
    assert fired == one_shot
    assert len(set(fired)) == len(fired) == len(EXPECTED)


def test_keys_are_stable_and_change_when_the_deadline_moves():
    first = [a.key for a in timers.schedule(township_case(), RULES, CALENDAR)]
    again = [a.key for a in timers.schedule(township_case(), RULES, CALENDAR)]
    assert first == again
    assert "371324-20260212-000007/handling@20260228T093000Z/overdue" in first
    extended_due = CALENDAR.add_working_days(HANDLING_DUE, 7)
    extended = township_case(deadlines=(Deadline("sign_off", ASSIGNED, SIGN_OFF_DUE),
                                        Deadline("handling", ASSIGNED, extended_due)))
    handling_keys = {a.key for a in timers.schedule(extended, RULES, CALENDAR) if "/handling@" in a.key}
    assert handling_keys.isdisjoint(first)


def test_a_deadline_met_on_time_stops_its_ladder():
    accepted = at(2026, 2, 13, 10)
    case = township_case(deadlines=(Deadline("sign_off", ASSIGNED, SIGN_OFF_DUE, met_at=accepted),
                                    Deadline("handling", ASSIGNED, HANDLING_DUE)))
    steps = [(d, s) for d, s, _ in summary(due_actions(case, set(), at(2026, 3, 1, 9), RULES, CALENDAR))]
    assert all(d == "handling" for d, _ in steps)


def test_a_late_acceptance_keeps_the_breach_records_but_drops_stale_reminders():
    # Accepted Saturday Feb 14 at 10:00, after the Friday deadline; the timer was down meanwhile.
    accepted = at(2026, 2, 14, 10)
    case = township_case(deadlines=(Deadline("sign_off", ASSIGNED, SIGN_OFF_DUE, met_at=accepted),))
    steps = [s for _, s, _ in summary(due_actions(case, set(), at(2026, 3, 1, 9), RULES, CALENDAR))]
    assert steps == ["overdue", "supervision"]


def test_a_major_case_opens_supervision_at_once_and_only_once():
    case = township_case(deadlines=(), major_since=at(2026, 2, 12, 11))
    first = due_actions(case, set(), at(2026, 2, 12, 11), RULES, CALENDAR)
    assert [(a.event, a.payload["reason"], a.key) for a in first] == [
        ("supervision_opened", "major", "371324-20260212-000007/major/supervision")]
    assert due_actions(case, {first[0].key}, at(2026, 5, 1, 9), RULES, CALENDAR) == []


def test_events_and_payloads():
    actions = {a.step: a for a in timers.schedule(township_case(), RULES, CALENDAR) if a.payload["deadline"] == "handling"}
    assert actions["reminder_before"].event == "reminder_due"
    assert actions["reminder_before"].payload["stage"] == "before"
    assert actions["reminder_at_deadline"].payload["stage"] == "at_deadline"
    assert actions["warning"].event == "case_overdue" and actions["warning"].payload["grade"] == "warning"
    assert actions["supervision"].event == "supervision_opened"
    assert actions["accountability"].event == "accountability_recorded"
    assert actions["accountability"].payload["against"] == {"kind": "mediator", "id": "m-1"}


def test_accountability_falls_back_to_the_unit_and_can_target_units():
    unheld = timers.schedule(township_case(mediator=None), RULES, CALENDAR)
    assert {a.payload["against"]["kind"] for a in unheld if a.step == "accountability"} == {"unit"}
    unit_rules = TimerRules(TimerPolicy(accountable="unit"), {})
    by_unit = timers.schedule(township_case(), unit_rules, CALENDAR)
    assert {a.payload["against"]["id"] for a in by_unit if a.step == "accountability"} == {"unit-bz"}


def test_overdue_grade_for_worklists():
    case = township_case(deadlines=(Deadline("handling", ASSIGNED, HANDLING_DUE),))
    grade = lambda now: timers.overdue_grade(case, now, RULES, CALENDAR)  # noqa: E731
    assert grade(at(2026, 2, 27, 9)) is None
    assert grade(at(2026, 2, 28, 11)) == "warning"
    assert grade(at(2026, 3, 2, 9)) == "overdue"
    assert grade(at(2026, 3, 5, 17)) == "seriously_overdue"
    met = township_case(deadlines=(Deadline("handling", ASSIGNED, HANDLING_DUE, met_at=at(2026, 3, 1, 9)),))
    assert timers.overdue_grade(met, at(2026, 3, 9, 9), RULES, CALENDAR) is None


def test_next_fire_at_is_the_earliest_unfired_future_action():
    case = township_case()
    assert timers.next_fire_at(case, set(), ASSIGNED, RULES, CALENDAR) == EXPECTED[0][2]
    fired = {a.key for a in due_actions(case, set(), at(2026, 3, 1, 9), RULES, CALENDAR)}
    assert timers.next_fire_at(case, fired, at(2026, 3, 1, 9), RULES, CALENDAR) == at(2026, 3, 5, 16, 45)


def test_reminder_hours_before_and_disabled_steps_from_yaml(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text(
        "timers:\n  major_case_supervision: false\n  deadlines:\n"
        "    default:\n      reminder_before: {hours: 4}\n      reminder_at_deadline: false\n"
        "      warning: null\n      seriously_overdue: {fraction_over: null, working_days_over: 1}\n"
        "      supervision_from: seriously_overdue\n      accountability_from: null\n", encoding="utf-8")
    rules = TimerRules.from_file(path)
    case = township_case(deadlines=(Deadline("handling", ASSIGNED, HANDLING_DUE),), major_since=ASSIGNED)
    assert summary(timers.schedule(case, rules, CALENDAR)) == [
        ("handling", "reminder_before", at(2026, 2, 28, 13, 30)),   # 4 working hours before 17:30
        ("handling", "overdue", HANDLING_DUE),
        ("handling", "seriously_overdue", at(2026, 3, 2, 17, 30)),
        ("handling", "supervision", at(2026, 3, 2, 17, 30)),
    ]


def test_an_unknown_grade_in_the_policy_is_refused():
    with pytest.raises(ValueError, match="supervision_from"):
        TimerPolicy.from_mapping({"supervision_from": "late"})


def test_grid_same_day_case():
    start = at(2026, 3, 2, 10)
    due = CALENDAR.add_working_days(start, 0)
    case = township_case(deadlines=(Deadline("handling", start, due),))
    reminder = next(a for a in timers.schedule(case, RULES, CALENDAR) if a.step == "reminder_before")
    assert reminder.fire_at == at(2026, 3, 2, 15, 37, 30)   # 75% of 7.5 hours after 10:00
