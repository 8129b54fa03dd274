"""Scorecards against a fixture computed by hand; hot topics; CSV for Excel."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from services.mediation import reports
from services.mediation.reports import CaseRecord, TopicRecord


def t(month, day, hour=9, minute=0):
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


START, END, AS_OF = t(3, 1, 0), t(4, 1, 0), t(4, 10, 0)


def record(case_no, unit, township, mediator, assigned, sign_dl, accepted, handling_dl,
           finished=None, outcome=None, rating=None, redo=0):
    return CaseRecord(case_no, unit, township, mediator, assigned, sign_dl, accepted, handling_dl,
                      finished, outcome, rating, redo)


# Each line says why the record counts where it does.
FIXTURE = [
    # R1 signed on time, resolved exactly at its deadline (still on time), 满意.
    record("R1", "U1", "T1", "M1", t(3, 2), t(3, 3, 9, 30), t(3, 2, 15), t(3, 11), t(3, 11), "resolved", "满意"),
    # R2 signed late (3-7 > 3-6), resolved late (3-20 > 3-16), 不满意.
    record("R2", "U1", "T1", "M1", t(3, 5), t(3, 6), t(3, 7), t(3, 16), t(3, 20), "resolved", "不满意"),
    # R3 signed on time, escalated late (3-20 > 3-19): a late completion, whatever the outcome.
    record("R3", "U1", "T1", "M2", t(3, 10), t(3, 11), t(3, 10, 12), t(3, 19), t(3, 20), "escalated"),
    # R4 returned (退单) without signing, before the sign-off deadline: a timely response; not a completion.
    record("R4", "U1", "T2", "M2", t(3, 12), t(3, 13), None, t(3, 23), t(3, 12, 11), "returned"),
    # R5 signed 08:00 before the 09:30 deadline, resolved late, 基本满意, redone once.
    record("R5", "U2", "T2", "M3", t(3, 15), t(3, 16, 9, 30), t(3, 16, 8), t(3, 25), t(3, 30), "resolved", "基本满意", 1),
    # R6 never signed, still open at AS_OF: late sign-off and late completion.
    record("R6", "U2", "T2", "M3", t(3, 20), t(3, 23), None, t(4, 2)),
    # R7 unit-held (no mediator), signed exactly at the deadline (on time), open but not yet due at AS_OF.
    record("R7", "U2", "T2", None, t(3, 25), t(3, 26), t(3, 26), t(4, 20)),
    # R8 on time both, referred.
    record("R8", "U2", "T1", "M3", t(3, 28), t(3, 30), t(3, 29), t(4, 10), t(3, 31), "referred"),
    # R9 assigned in February: outside the period.
    record("R9", "U1", "T1", "M1", t(2, 20), t(2, 21), t(2, 20, 12), t(3, 2), t(3, 1), "resolved", "满意"),
    # R10 taken away by a supervisor before both deadlines: counted in neither on-time rate.
    record("R10", "U1", "T1", "M2", t(3, 26), t(3, 27), None, t(4, 5), t(3, 26, 12), "reassigned"),
    # R11 signed on time, reassigned after its handling deadline had passed: a late completion.
    record("R11", "U2", "T2", "M3", t(3, 3), t(3, 4), t(3, 3, 10), t(3, 6), t(3, 9), "reassigned"),
    # R12 settled on site without signing, same day: timely response and timely completion.
    record("R12", "U1", "T2", "M1", t(3, 8), t(3, 9), None, t(3, 8, 17), t(3, 8, 12), "resolved_on_site"),
]

# (assigned, sign-off, completion, resolution, satisfaction, redo, escalation) as (numerator, denominator).
EXPECTED = {
    "unit": {
        "U1": (6, (4, 5), (2, 4), (3, 4), (1, 2), (0, 2), (1, 4)),
        "U2": (5, (4, 5), (1, 4), (1, 2), (1, 1), (1, 1), (0, 2)),
        "合计": (11, (8, 10), (3, 8), (4, 6), (2, 3), (1, 3), (1, 6)),
    },
    "township": {
        "T1": (5, (3, 4), (2, 4), (2, 4), (1, 2), (0, 2), (1, 4)),
        "T2": (6, (5, 6), (1, 4), (2, 2), (1, 1), (1, 1), (0, 2)),
        "合计": (11, (8, 10), (3, 8), (4, 6), (2, 3), (1, 3), (1, 6)),
    },
    "mediator": {
        "M1": (3, (2, 3), (2, 3), (3, 3), (1, 2), (0, 2), (0, 3)),
        "M2": (3, (2, 2), (0, 1), (0, 1), (0, 0), (0, 0), (1, 1)),
        "M3": (4, (3, 4), (1, 4), (1, 2), (1, 1), (1, 1), (0, 2)),
        "合计": (11, (8, 10), (3, 8), (4, 6), (2, 3), (1, 3), (1, 6)),
    },
}


def as_tuple(row: reports.ScoreRow):
    rates = (row.on_time_sign_off, row.on_time_completion, row.resolution, row.satisfaction, row.redo, row.escalation)
    return (row.assigned, *((r.numerator, r.denominator) for r in rates))


@pytest.mark.parametrize("by", reports.GROUPINGS)
def test_scorecard_matches_the_hand_computed_fixture(by):
    rows = reports.scorecard(FIXTURE, by, START, END, AS_OF)
    assert {row.group: as_tuple(row) for row in rows} == EXPECTED[by]
    assert [row.group for row in rows][-1] == reports.TOTAL


def test_rates_as_numbers_and_empty_when_nothing_to_rate():
    rows = {row.group: row for row in reports.scorecard(FIXTURE, "mediator", START, END, AS_OF)}
    assert rows["M3"].on_time_sign_off.value == 0.75
    assert rows["M2"].satisfaction.value is None and rows["M2"].satisfaction.percent() == ""
    assert rows["合计"].resolution.percent() == "66.7%"


def test_as_of_decides_which_open_cases_are_already_late():
    early = {row.group: row for row in reports.scorecard(FIXTURE, "unit", START, END, t(3, 22))}
    # On 3-22 R6's sign-off (3-23) and handling (4-2) deadlines have not passed: not counted yet.
    assert (early["U2"].on_time_sign_off.numerator, early["U2"].on_time_sign_off.denominator) == (4, 4)
    assert (early["U2"].on_time_completion.numerator, early["U2"].on_time_completion.denominator) == (1, 3)


def test_records_are_checked():
    with pytest.raises(ValueError):
        record("X", "U", "T", "M", t(3, 1), t(3, 2), None, t(3, 5), t(3, 3), "lost")
    with pytest.raises(ValueError):
        record("X", "U", "T", "M", t(3, 1), t(3, 2), None, t(3, 5), None, "resolved")
    with pytest.raises(ValueError):
        reports.scorecard(FIXTURE, "village", START, END, AS_OF)


def test_scorecard_csv_opens_in_excel_with_chinese():
    rows = reports.scorecard(FIXTURE, "unit", START, END, AS_OF)
    data = reports.scorecard_csv(rows, "unit", labels={"U1": "卞庄街道人民调解委员会"})
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0][:4] == ["单位", "交办件数", "按时签收率", "按时签收(件数/基数)"]
    assert table[1][:4] == ["卞庄街道人民调解委员会", "6", "80.0%", "4/5"]
    assert table[-1][0] == "合计"


# --- hot topics ---------------------------------------------------------------------------------

TOPICS = [
    TopicRecord("C1", t(3, 2), "邻里纠纷", "卞庄街道"),
    TopicRecord("C2", t(3, 3), "邻里纠纷", "向城镇"),
    TopicRecord("C3", t(3, 4), "劳动争议", "卞庄街道"),
    TopicRecord("C4", t(3, 5), "邻里纠纷", "卞庄街道"),
    TopicRecord("C4", t(3, 5), "邻里纠纷", "卞庄街道"),    # the same case twice: counted once
    TopicRecord("C5", t(3, 6), "婚姻家庭", "向城镇"),
    TopicRecord("C6", t(2, 27), "劳动争议", "卞庄街道"),   # before the window
]


def test_hot_topics_count_each_case_once_in_the_window():
    topics = reports.hot_topics(TOPICS, START, END, top=2)
    assert topics.cases == 5
    assert [(c.name, c.count) for c in topics.dispute_types] == [("邻里纠纷", 3), ("劳动争议", 1)]
    assert [(c.name, c.count, c.share) for c in topics.places] == [("卞庄街道", 3, 0.6), ("向城镇", 2, 0.4)]
    assert [(c.name, c.count) for c in topics.pairs] == [("卞庄街道 · 邻里纠纷", 2), ("卞庄街道 · 劳动争议", 1)]


def test_hot_topics_csv_and_formula_injection():
    data = reports.hot_topics_csv(reports.hot_topics(TOPICS, START, END))
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == ["类别", "名称", "件数", "占比"]
    assert table[1] == ["纠纷类型", "邻里纠纷", "3", "60.0%"]
    assert reports.to_csv(["名称"], [["=HYPERLINK(\"x\")"]]).decode("utf-8-sig").splitlines()[1] == \
        '"\'=HYPERLINK(""x"")"'


# --- records rebuilt from the audit trail ------------------------------------------------------------

def test_records_from_audit_follow_each_assignment():
    from services.mediation.lifecycle import Actor, CaseState, apply

    system, head = Actor("system"), Actor("county_supervisor", "s1")
    m1, m2, m3 = Actor("mediator", "m1"), Actor("mediator", "m2"), Actor("mediator", "m3")
    now = t(3, 2, 2)   # Mon 10:00 in Lanling
    steps = [
        ("route", system, {"level": "township", "mechanism": "chain", "unit": "U1", "township": "T1"}, now),
        ("assign", system, {"holders": ["m1"]}, now),
        ("return", m1, {"reason": "回避"}, t(3, 2, 5)),
        ("route", system, {"level": "township", "mechanism": "chain", "unit": "U1", "township": "T1"}, t(3, 2, 6)),
        ("assign", system, {"holders": ["m2"]}, t(3, 2, 6)),
        ("reassign", head, {"holders": ["m3"], "reason": "m2病假"}, t(3, 3, 2)),
        ("accept", m3, {}, t(3, 3, 3)),
        ("request_extension", m3, {"reason": "鉴定"}, t(3, 4, 2)),
        ("approve_extension", head, {}, t(3, 4, 3)),
        ("record_session", m3, {"mode": "online", "attendees": ["甲"], "notes": "n"}, t(3, 5, 2)),
        ("resolve", m3, {"terms": ["赔偿"]}, t(3, 6, 2)),
        ("evaluate", Actor("citizen", case_no="C"), {"rating": "不满意"}, t(3, 7, 2)),
        ("redo", head, {"reason": "复核"}, t(3, 9, 2)),
        ("resolve", m3, {"terms": ["赔偿到位"]}, t(3, 10, 2)),
        ("evaluate", Actor("citizen", case_no="C"), {"rating": "满意"}, t(3, 11, 2)),
    ]
    case, audit = CaseState("C", channel="app"), []
    for action, actor, payload, at in steps:
        transition = apply(case, action, actor, payload, at)
        case = transition.case
        audit.append(transition.audit)
    first, second, third = reports.records_from_audit(audit)
    assert (first.mediator, first.outcome, first.accepted_at, first.responded_at) == ("m1", "returned", None, t(3, 2, 5))
    assert (second.mediator, second.outcome, second.finished_at) == ("m2", "reassigned", t(3, 3, 2))
    assert (third.mediator, third.unit, third.township) == ("m3", "U1", "T1")
    assert third.accepted_at == t(3, 3, 3) and third.sign_off_deadline == t(3, 4, 9, 30)
    assert (third.outcome, third.finished_at, third.rating, third.redo_count) == ("resolved", t(3, 10, 2), "满意", 1)
    assert third.handling_deadline == case.handling_due     # the redo's deadline
