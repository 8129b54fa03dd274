"""The psych API through the real gateway: the roster, statistics, matching, offers, sessions,
and the confidentiality of session notes, endpoint by endpoint and role by role."""
from __future__ import annotations

import os

import pytest
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import select, text

from services.gateway.models import StaffAccount
from services.psych.models import SessionRow
from tests.integration.psych_support import make_env, psych_requested

CASE = "371324-20260603-000007"
NOTES = "当事人提到与儿子断绝往来后夜不能寐，约定下周复访"


@pytest.fixture
def env(container_factory, service_config, amqp):
    return make_env(container_factory, service_config, amqp)


def coordinator(env):
    return env.token("psych_coordinator", "PSY-COORD-01")


def test_the_roster_through_the_gateway(env):
    boss = coordinator(env)
    new = {"name": "丁咨询师", "gender": "male", "birth_year": 1975, "occupation": "社工",
           "specialities": ["婚姻家庭", "老年"], "certification": "中级社会工作师", "township": "兰陵镇",
           "phone": "139-0000-0004", "weekly_capacity": 2,
           "availability": {"slots": [{"day": "sat", "start": "09:00", "end": "12:00"}]},
           "recusal": {"villages": ["371324-003-002"], "persons": [{"phone": "13812345678"}]}}
    created = env.post("/api/v1/psych/counsellors", boss, new)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["id"] == "PC-9004" and record["township_code"] == "371324-003"
    assert record["phone"] == "13900000004" and record["recusal"] == {"villages": ["371324-003-002"], "persons": 1}
    assert record["account"] == {"username": "pc-9004", "created": True}
    with env.gateway_db.reading() as session:
        account = session.get(StaffAccount, "pc-9004")
        assert (account.role, account.directory_id) == ("counsellor", "PC-9004")
    login = env.post("/api/v1/auth/login", None,
                     {"username": "pc-9004", "password": os.environ["LANLING_STAFF_INITIAL_PASSWORD"]})
    assert login.status_code == 200 and login.json()["role"] == "counsellor"

    invalid = env.post("/api/v1/psych/counsellors", boss, {**new, "township": "火星镇", "specialities": ["占卜"],
                                                           "phone": "12345", "weekly_capacity": -1, "colour": "red"})
    assert invalid.status_code == 400
    assert {"township_code", "specialities", "phone", "weekly_capacity", "colour"} <= set(invalid.json()["fields"])

    listed = env.get("/api/v1/psych/counsellors", boss, params={"limit": 2, "offset": 1})
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 4 and [c["id"] for c in page["items"]] == ["PC-9002", "PC-9003"]
    assert page["items"][0]["phone"] == "139****0002"  # masked in lists, even for the coordinator
    specialists = env.get("/api/v1/psych/counsellors", boss, params={"speciality": "老年", "township": "兰陵"}).json()
    assert [c["id"] for c in specialists["items"]] == ["PC-9004"]
    assert env.get("/api/v1/psych/counsellors", boss, params={"age_band": "old"}).status_code == 400

    supervisor = env.token("county_supervisor", "SUP-01")
    assert env.get("/api/v1/psych/counsellors/PC-9004", supervisor).json()["phone"] == "139****0004"
    assert env.get("/api/v1/psych/counsellors/PC-9004", boss).json()["phone"] == "13900000004"

    own = env.token("counsellor", "PC-9004")
    assert env.call("PATCH", "/api/v1/psych/counsellors/PC-9004", own,
                    {"availability": {"away_until": "2026-07-01T00:00:00+08:00"}}).status_code == 200
    assert env.call("PATCH", "/api/v1/psych/counsellors/PC-9004", own, {"weekly_capacity": 9}).status_code == 403
    assert env.call("PATCH", "/api/v1/psych/counsellors/PC-9001", own,
                    {"availability": {"away_until": None}}).status_code == 403
    updated = env.call("PATCH", "/api/v1/psych/counsellors/PC-9004", boss, {"weekly_capacity": 4})
    assert updated.json()["weekly_capacity"] == 4
    assert updated.json()["availability"]["away_until"] == "2026-07-01T00:00:00+08:00"

    assert env.post("/api/v1/psych/counsellors/PC-9004/deactivate", boss, {"reason": "调离"}).json()["active"] is False
    inactive = env.get("/api/v1/psych/counsellors", boss, params={"active": "false"}).json()
    assert [c["id"] for c in inactive["items"]] == ["PC-9004"]

    stats = env.get("/api/v1/psych/stats", supervisor).json()
    assert (stats["total"], stats["active"], stats["inactive"]) == (4, 3, 1)
    assert sum(stats["by_age_band"].values()) == 4 and stats["by_speciality"]["婚姻家庭"] == 3
    assert stats["by_occupation"] == {"社工": 4}
    assert {t["code"]: t["count"] for t in stats["by_township"]}["371324-003"] == 2
    active_only = env.get("/api/v1/psych/stats", supervisor, params={"scope": "active"}).json()
    assert active_only["scope"] == "active" and sum(active_only["by_age_band"].values()) == 3

    mediator = env.token("mediator", "M-0001")
    assert env.get("/api/v1/psych/counsellors", mediator).status_code == 403
    assert env.post("/api/v1/psych/counsellors", supervisor, new).status_code == 403
    assert env.get("/api/v1/psych/stats").status_code == 401


def test_matching_ranks_with_reasons_and_offers_nobody(env):
    boss = coordinator(env)
    answer = env.post("/api/v1/psych/match", boss, {"dispute_type": "婚姻家庭", "township": "371324-003",
                                                     "risk_signals": ["extreme_risk"], "urgent": True,
                                                     "preferences": {"gender": "female"}})
    assert answer.status_code == 200, answer.text
    candidates = answer.json()["candidates"]
    assert [c["counsellor_id"] for c in candidates] == ["PC-9001", "PC-9002", "PC-9003"]
    assert candidates[0]["score"] > candidates[1]["score"] > candidates[2]["score"]
    assert any("危机干预" in r for r in candidates[0]["reasons"]) and any("距离" in r for r in candidates[0]["reasons"])
    with env.psych_db.reading() as session:
        assert session.execute(text("SELECT count(*) FROM outbox")).scalar() == 0  # nobody was offered
    bad = env.post("/api/v1/psych/match", boss, {"township": "火星镇", "risk_signals": ["bad_luck"]})
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"township", "risk_signals"}
    assert env.post("/api/v1/psych/match", env.token("counsellor", "PC-9001"), {"township": "兰陵镇"}).status_code == 403
    # found by the fuzzer: a time far from now overflowed the weekly load window (500)
    ancient = env.post("/api/v1/psych/match", boss, {"township": "兰陵镇", "at": "0001-01-07T00:00:00Z"})
    assert ancient.status_code == 400 and set(ancient.json()["fields"]) == {"at"}


def test_an_offer_id_that_is_not_a_plain_number_is_not_found(env):
    """Found by the fuzzer: "²".isdigit() is true but int() refuses it (500); a huge id reached SQL."""
    for offer_id in ("%C2%B2", "99999999999999999999", "0"):
        answer = env.post(f"/api/v1/psych/offers/{offer_id}/accept", env.token("counsellor", "PC-9001"))
        assert answer.status_code == 404, (offer_id, answer.text)


def _assigned_case_with_a_session(env):
    """PC-9001 declines, PC-9002 accepts and records a session with NOTES."""
    with entrypoint_waiter(env.containers["psych"][0], "on_psych_requested", timeout=15):
        env.publish("psych_requested", psych_requested(CASE))
    first = env.offers(CASE)[0]
    assert env.post(f"/api/v1/psych/offers/{first.id}/decline", env.token("counsellor", "PC-9001")).status_code == 200
    second = env.offers(CASE)[1]
    assert second.counsellor_id == "PC-9002"
    writer = env.token("counsellor", "PC-9002")
    for someone in ("operator", coordinator(env), env.token("counsellor", "PC-9003"),
                    env.token("counsellor", "PC-9001")):
        assert env.post(f"/api/v1/psych/offers/{second.id}/accept", someone).status_code == 403
    accepted = env.post(f"/api/v1/psych/offers/{second.id}/accept", writer)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert env.post(f"/api/v1/psych/offers/{second.id}/accept", writer).status_code == 200  # the same answer again
    assert env.request(CASE).status == "assigned"
    (assigned, _), = env.take("notify.counsellor_assigned")
    assert assigned.data["counsellor"]["id"] == "PC-9002"

    outsider = env.post(f"/api/v1/psych/cases/{CASE}/sessions", env.token("counsellor", "PC-9001"),
                        {"kind": "first", "notes": "冒充"})
    assert outsider.status_code == 403
    recorded = env.post(f"/api/v1/psych/cases/{CASE}/sessions", writer, {"kind": "first", "notes": NOTES})
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["notes"] == NOTES and recorded.json()["next_follow_up"]
    return writer


def test_session_notes_are_readable_only_by_their_writer_and_the_coordinator(env):
    writer = _assigned_case_with_a_session(env)
    readers = {"writer PC-9002": writer, "psych coordinator": coordinator(env)}
    others = {
        "operator key": "operator",
        "counsellor who declined": env.token("counsellor", "PC-9001"),
        "unrelated counsellor": env.token("counsellor", "PC-9003"),
        "county supervisor": env.token("county_supervisor", "SUP-01"),
        "township head": env.token("township_head", "TH-003", township="371324-003"),
        "mediator": env.token("mediator", "M-0001"),
        "citizen": env.token("citizen", None),
        "nobody": None,
    }
    endpoints = [f"/api/v1/psych/cases/{CASE}/sessions", f"/api/v1/psych/cases/{CASE}", "/api/v1/psych/cases",
                 "/api/v1/psych/offers", "/api/v1/psych/counsellors", "/api/v1/psych/counsellors/PC-9002",
                 "/api/v1/psych/stats"]
    for who, credentials in {**readers, **others}.items():
        for path in endpoints:
            response = env.get(path, credentials)
            may_read = who in readers and path.endswith("/sessions")
            assert (NOTES in response.text) == may_read, f"{who} GET {path}: {response.status_code}"
    for who, credentials in readers.items():
        items = env.get(f"/api/v1/psych/cases/{CASE}/sessions", credentials).json()["items"]
        assert [i["notes"] for i in items] == [NOTES], who
    operator_view = env.get(f"/api/v1/psych/cases/{CASE}/sessions", "operator").json()["items"]
    assert operator_view and "notes" not in operator_view[0]  # the operator sees that a session happened
    # others who may see the case still get the session without its notes; the rest are refused
    assert env.get(f"/api/v1/psych/cases/{CASE}/sessions", others["county supervisor"]).status_code == 200
    for who in ("unrelated counsellor", "mediator", "township head", "citizen"):
        assert env.get(f"/api/v1/psych/cases/{CASE}/sessions", others[who]).status_code == 403, who

    # at rest the notes are ciphertext; on the wire psych_session_recorded never carries them
    with env.psych_db.reading() as session:
        stored = session.execute(select(SessionRow.__table__.c.notes)).scalar()
        raw = session.execute(text("SELECT notes FROM sessions")).scalar()
    assert stored == NOTES and NOTES not in raw
    queue = "mediation.psych_session_recorded"
    (event, raw_event), = env.take(queue)
    assert event.data["kind"] == "first" and NOTES not in raw_event and "notes" not in event.data


def test_an_outcome_closes_the_case_and_mediation_hears_it(env):
    writer = _assigned_case_with_a_session(env)
    env.take("mediation.psych_session_recorded")
    closed = env.post(f"/api/v1/psych/cases/{CASE}/sessions", writer,
                      {"kind": "follow_up", "notes": "情绪平稳", "outcome": "stabilised"})
    assert closed.status_code == 201, closed.text
    view = env.get(f"/api/v1/psych/cases/{CASE}", coordinator(env)).json()
    assert view["status"] == "closed" and view["outcome"] == "stabilised" and view["follow_up_due"] is None
    (event, _), = env.take("mediation.psych_session_recorded")
    assert (event.data["kind"], event.data["outcome"]) == ("follow_up", "stabilised")
    again = env.post(f"/api/v1/psych/cases/{CASE}/sessions", writer, {"kind": "follow_up", "notes": "再访"})
    assert again.status_code == 400 and "case_no" in again.json()["fields"]
    assert env.post(f"/api/v1/psych/cases/{CASE}/outcome", coordinator(env),
                    {"outcome": "lost_contact"}).status_code == 409
    actions = [h["action"] for h in view["history"]]
    assert actions[:4] == ["requested", "offered", "offer_declined", "offered"]
    assert {"offer_accepted", "session_recorded"} <= set(actions)


class IntakeStub:
    """Intake's case view, as far as the gateway needs it to know who may act on the case."""
    name = "intake"

    @rpc
    def get_case(self, case_no):
        return {"case_no": case_no, "township": "371324-003", "handlers": ["M-0001"], "sources": []}


def test_the_case_mediator_may_record_consent_and_another_mediator_may_not(env, container_factory):
    container_factory(IntakeStub, env.config).start()
    with entrypoint_waiter(env.containers["psych"][0], "on_psych_requested", timeout=15):
        env.publish("psych_requested", psych_requested(CASE, consent="pending"))
    body = {"state": "given", "note": "调解时当事人同意心理疏导", "preferences": {"gender": "female"}}
    assert env.post(f"/api/v1/psych/cases/{CASE}/consent", env.token("mediator", "M-0002"), body).status_code == 403
    assert env.post(f"/api/v1/psych/cases/{CASE}/consent", env.token("counsellor", "PC-9001"), body).status_code == 403
    recorded = env.post(f"/api/v1/psych/cases/{CASE}/consent", env.token("mediator", "M-0001"), body)
    assert recorded.status_code == 200, recorded.text
    assert env.request(CASE).consent == "given" and env.request(CASE).status == "offered"
    assert env.request(CASE).profile["preferred_gender"] == "female"
    invalid = env.post(f"/api/v1/psych/cases/{CASE}/consent", coordinator(env), {"state": "maybe"})
    assert invalid.status_code == 400 and "state" in invalid.json()["fields"]
