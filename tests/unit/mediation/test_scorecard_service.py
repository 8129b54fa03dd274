"""Scorecard figures from the stored audit trail, against a fixture computed by hand.

Four hotline cases, all assigned Monday 2026-03-02 09:00 (Lanling time); hotline limits: sign off by
Tuesday 03-03 17:30, handle by Monday 03-09 17:30. The report is made on 2026-03-16.

  A  M-1  accepted Mon 10:00, session, resolved Tue 10:00, rated 满意
  B  M-1  accepted Wed 10:00 (late), session, failed (escalated) Wed 11:00
  C  M-2  accepted Mon 10:00, returned (退单) Mon 11:00
  D  M-2  nothing at all

By hand (reports.py defines each rate):
  M-1  assigned 2; 按时签收 1/2 (B late); 按时办结 2/2 (A and B concluded before 03-09);
       化解 1/2 (A of A,B); 满意 1/1; 重办 0/1 (A resolved once); 上报 1/2 (B)
  M-2  assigned 2; 按时签收 1/2 (C on time; D's deadline passed unanswered);
       按时办结 0/1 (C returned: not counted; D open past its deadline); 化解 0/0; 满意 0/0; 重办 0/0; 上报 0/0
  合计 assigned 4; 2/4; 2/3; 1/2; 1/1; 0/1; 1/2
"""
from __future__ import annotations

from datetime import datetime

from services.mediation import handlers
from services.mediation.deadlines import SHANGHAI
from tests.unit.mediation.conftest import SUPERVISOR

M1, M2 = {"role": "mediator", "id": "M-1"}, {"role": "mediator", "id": "M-2"}


def at(desk, day, hour, minute=0):
    desk.clock.set(datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI))


def case(n):
    return f"371324-20260302-00000{n}"


def build(desk):
    at(desk, 2, 9)
    for n, mediator in ((1, "M-1"), (2, "M-1"), (3, "M-2"), (4, "M-2")):
        desk.received(case(n))
        desk.routed(case(n), mediators=(mediator,))
    at(desk, 2, 10)
    desk.act(case(1), "accept", M1)
    desk.act(case(3), "accept", M2)
    at(desk, 2, 11)
    desk.act(case(1), "record_session", M1, mode="face_to_face", attendees=["甲"], notes="n")
    desk.act(case(3), "return", M2, reason="不属于本人专长")
    at(desk, 3, 10)
    desk.act(case(1), "resolve", M1, terms=["和解"])
    token = desk.events("case_resolved")[0].data["rating_token"]
    at(desk, 3, 12)
    with desk.db.transaction() as uow:
        handlers.evaluate(uow, case(1), token, "满意", None)
    at(desk, 4, 10)
    desk.act(case(2), "accept", M1)
    at(desk, 4, 10, 30)
    desk.act(case(2), "record_session", M1, mode="online", attendees=["乙"], notes="n")
    at(desk, 4, 11)
    desk.act(case(2), "fail", M1, reason="分歧过大")
    at(desk, 16, 9)


def figures(row):
    return (row["assigned"], *[(row[name]["numerator"], row[name]["denominator"])
                               for name in ("on_time_sign_off", "on_time_completion", "resolution",
                                            "satisfaction", "redo", "escalation")])


def test_scorecard_by_mediator_matches_the_hand_computed_fixture(desk):
    build(desk)
    with desk.db.reading() as session:
        card = handlers.scorecard(session, "mediator", "2026-03-01", "2026-03-08", desk.clock.now(), SUPERVISOR)
    rows = {row["group"]: figures(row) for row in card["rows"]}
    assert rows == {
        "M-1": (2, (1, 2), (2, 2), (1, 2), (1, 1), (0, 1), (1, 2)),
        "M-2": (2, (1, 2), (0, 1), (0, 0), (0, 0), (0, 0), (0, 0)),
        "合计": (4, (2, 4), (2, 3), (1, 2), (1, 1), (0, 1), (1, 2)),
    }
    assert {row["group"]: row["label"] for row in card["rows"]}["M-1"] == "调解员1"
    lines = card["csv"].splitlines()
    assert lines[0].startswith("调解员,交办件数,按时签收率")
    assert lines[1].startswith("调解员1,2,50.0%,1/2,100.0%,2/2,50.0%,1/2,100.0%,1/1,0.0%,0/1,50.0%,1/2")
    assert lines[2].startswith("调解员2,2,50.0%,1/2,0.0%,0/1,,0/0")


def test_a_period_without_assignments_is_empty_and_townships_see_only_their_own(desk):
    build(desk)
    head_elsewhere = {"role": "township_head", "id": "TH-1", "township": "371324-001"}
    with desk.db.reading() as session:
        empty = handlers.scorecard(session, "township", "2026-04-01", "2026-05-01", desk.clock.now(), SUPERVISOR)
        other = handlers.scorecard(session, "township", "2026-03-01", "2026-03-08", desk.clock.now(),
                                   head_elsewhere)
        topics = handlers.hot_topics(session, 30, desk.clock.now())
    assert [r["group"] for r in empty["rows"]] == ["合计"] and empty["rows"][0]["assigned"] == 0
    assert other["rows"][-1]["assigned"] == 0
    assert topics["cases"] == 4 and topics["dispute_types"][0] == {"name": "邻里纠纷", "count": 4, "share": 1.0}
