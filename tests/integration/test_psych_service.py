"""Psych on a real broker and database: triggers, consent, offers falling through, the offer scan,
the unmatched path, replicas following the roster."""
from __future__ import annotations

from datetime import timedelta

import pytest
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import func, select

from services.common.clock import ManualClock
from services.common.db import Database
from services.psych import match, roster
from services.psych.models import AuditEntry, Base as PsychBase, Offer
from tests.conftest import using_postgres
from tests.harness import wait_until
from tests.integration.psych_support import START, case_urgent, make_env, psych_requested, small_pool

CASE = "371324-20260603-000001"


@pytest.fixture
def env(container_factory, service_config, amqp):
    return make_env(container_factory, service_config, amqp)


def handled(env, entrypoint: str):
    return entrypoint_waiter(env.containers["psych"][0], entrypoint, timeout=15)


def scanned_until(env, condition):
    """Wait for offer scans (the timer) until `condition()` holds."""
    return entrypoint_waiter(env.containers["psych"][0], "scan_expired_offers", timeout=15,
                             callback=lambda worker_ctx, result, exc_info: condition())


def test_an_urgent_case_is_offered_by_the_handler_itself_within_the_minute(env):
    # The clock does not move: were the first offer left to the periodic scan, it would never come.
    with handled(env, "on_case_urgent"):
        env.publish("case_urgent", case_urgent(CASE, START))
    request = env.request(CASE)
    assert request.status == "offered" and request.urgent
    assert request.first_offer_at - request.requested_at <= timedelta(minutes=1)
    (offer,) = env.offers(CASE)
    assert offer.counsellor_id == "PC-9001"
    assert offer.expires_at - offer.offered_at == timedelta(minutes=30)  # urgent: 30 minutes to answer

    (event, raw), = env.take("notify.counsellor_offered")
    assert event.data["urgent"] is True and event.data["basis"] == "emergency"
    assert event.data["counsellor"]["phone"] == "13900000001" and "13900000001" not in raw  # sealed on the wire
    assert event.data["reasons"] and event.data["score"] > 0
    with env.psych_db.transaction() as uow:
        offered = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "offered")).one()
    # no consent yet: the emergency and its reason are what the offer rests on, on record
    assert offered.detail["basis"] == "emergency" and "喝农药" in offered.detail["basis_text"]


def test_without_consent_nobody_is_offered_until_staff_record_it(env):
    with handled(env, "on_psych_requested"):
        env.publish("psych_requested", psych_requested(CASE, consent="pending"))
    assert env.request(CASE).status == "await_consent"
    assert env.offers(CASE) == [] and env.depth("notify.counsellor_offered") == 0

    env.clock.advance(timedelta(hours=2))
    coordinator = env.token("psych_coordinator", "PSY-COORD-01")
    refused = env.post(f"/api/v1/psych/cases/{CASE}/consent", coordinator, {"state": "refused", "note": "电话沟通"})
    assert refused.status_code == 200 and refused.json()["status"] == "await_consent"
    given = env.post(f"/api/v1/psych/cases/{CASE}/consent", coordinator, {"state": "given", "note": "当面同意"})
    assert given.status_code == 200, given.text
    view = given.json()
    assert view["status"] == "offered" and view["consent"]["by"] == "psych_coordinator:PSY-COORD-01"
    assert [o["counsellor_id"] for o in view["offers"]] == ["PC-9001"]
    (event, _), = env.take("notify.counsellor_offered")
    assert event.data["basis"] == "consent" and event.data["urgent"] is False

    # the party withdraws: the open offer is withdrawn and nobody else is asked
    withdrawn = env.post(f"/api/v1/psych/cases/{CASE}/consent", coordinator, {"state": "withdrawn"}).json()
    assert withdrawn["status"] == "await_consent" and withdrawn["offers"][0]["status"] == "withdrawn"
    assert env.depth("notify.counsellor_offered") == 0


def test_decline_and_timeout_fall_through_to_the_next_then_the_coordinator_hears_why(env):
    with handled(env, "on_psych_requested"):
        env.publish("psych_requested", psych_requested(CASE))
    first, = env.offers(CASE)
    assert first.counsellor_id == "PC-9001" and first.expires_at - first.offered_at == timedelta(hours=24)

    declined = env.post(f"/api/v1/psych/offers/{first.id}/decline", env.token("counsellor", "PC-9001"),
                        {"reason": "本周外出培训"})
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert [o.counsellor_id for o in env.offers(CASE)] == ["PC-9001", "PC-9002"]

    env.clock.advance(timedelta(hours=24, minutes=1))  # PC-9002 never answers
    with scanned_until(env, lambda: len(env.offers(CASE)) == 3):
        pass
    statuses = [(o.counsellor_id, o.status) for o in env.offers(CASE)]
    assert statuses == [("PC-9001", "declined"), ("PC-9002", "timed_out"), ("PC-9003", "pending")]

    third = env.offers(CASE)[2]
    late = env.post(f"/api/v1/psych/offers/{env.offers(CASE)[1].id}/accept", env.token("counsellor", "PC-9002"))
    assert late.status_code == 409  # too late: it has moved on
    env.post(f"/api/v1/psych/offers/{third.id}/decline", env.token("counsellor", "PC-9003"))
    assert env.request(CASE).status == "unmatched"

    offered = env.take("notify.counsellor_offered", 3)
    assert [e.data["counsellor"]["id"] for e, _ in offered] == ["PC-9001", "PC-9002", "PC-9003"]
    assert [e.data["attempt"] for e, _ in offered] == [1, 2, 3]
    (unmatched, raw), = env.take("notify.psych_unmatched")
    assert "拒绝 2 人" in unmatched.data["reason"] and "超时未答复 1 人" in unmatched.data["reason"]
    assert unmatched.data["tried"] == 3
    coordinator = unmatched.data["coordinator"]
    assert coordinator["id"] == "PSY-COORD-01" and coordinator["role"] == "psych_coordinator"
    assert coordinator["phone"] and coordinator["email"] and coordinator["phone"] not in raw


def test_nobody_suitable_at_all_goes_straight_to_the_coordinator_with_counts(env):
    with handled(env, "on_psych_requested"):
        env.publish("psych_requested", psych_requested(CASE, village=None, township="371324-003",
                                                       parties=[], party_hashes=[]))
    offer, = env.offers(CASE)
    # the only counsellors left are on leave: the second request for another case finds none
    coordinator = env.token("psych_coordinator", "PSY-COORD-01")
    away = (START + timedelta(days=30)).isoformat()
    for cid in ("PC-9002", "PC-9003"):
        changed = env.call("PATCH", f"/api/v1/psych/counsellors/{cid}", coordinator,
                           {"availability": {"away_until": away}})
        assert changed.status_code == 200, changed.text
    deactivated = env.post("/api/v1/psych/counsellors/PC-9001/deactivate", coordinator, {"reason": "长期病假"})
    assert deactivated.json()["active"] is False
    # PC-9001's open offer went back: nobody else is available, so the case is unmatched
    assert env.offers(CASE)[0].status == "withdrawn"
    assert env.request(CASE).status == "unmatched"
    reason = env.request(CASE).unmatched_reason
    assert "停用 1 人" in reason and "时间不合 2 人" in reason and "可用 0 人" in reason


def test_a_case_turning_urgent_hastens_the_open_offer_or_moves_on(env):
    with handled(env, "on_psych_requested"):
        env.publish("psych_requested", psych_requested(CASE))
    first, = env.offers(CASE)
    assert first.expires_at - first.offered_at == timedelta(hours=24)
    env.clock.advance(timedelta(minutes=10))
    with handled(env, "on_case_urgent"):
        env.publish("case_urgent", case_urgent(CASE, env.clock.now()))
    hastened, = env.offers(CASE)  # PC-9001 can be there in time: the same offer, 30 minutes from now
    assert hastened.urgent and hastened.expires_at == env.clock.now() + timedelta(minutes=30)
    assert [e.data["urgent"] for e, _ in env.take("notify.counsellor_offered", 2)] == [False, True]
    assert "case_urgent" in env.request(CASE).triggers and env.request(CASE).status == "offered"


def test_the_coordinator_names_a_counsellor_for_an_unmatched_case(env):
    with handled(env, "on_psych_requested"):
        env.publish("psych_requested", psych_requested(CASE))
    for offer_id, cid in ((1, "PC-9001"), (2, "PC-9002"), (3, "PC-9003")):
        assert env.post(f"/api/v1/psych/offers/{offer_id}/decline", env.token("counsellor", cid)).status_code == 200
    assert env.request(CASE).status == "unmatched"
    boss = env.token("psych_coordinator", "PSY-COORD-01")
    assert env.post(f"/api/v1/psych/cases/{CASE}/offers", env.token("county_supervisor", "S1"), {}).status_code == 403
    named = env.post(f"/api/v1/psych/cases/{CASE}/offers", boss, {"counsellor_id": "PC-9002", "reason": "电话沟通后同意"})
    assert named.status_code == 200, named.text
    view = named.json()
    assert view["status"] == "offered" and view["episode"] == 2
    latest = view["offers"][-1]
    assert (latest["counsellor_id"], latest["status"], latest["episode"]) == ("PC-9002", "pending", 2)
    assert latest["reasons"] == ["协调员指定：电话沟通后同意"]
    accepted = env.post(f"/api/v1/psych/offers/{latest['id']}/accept", env.token("counsellor", "PC-9002"))
    assert accepted.status_code == 200 and env.request(CASE).status == "assigned"


def test_each_replica_follows_roster_changes_made_through_another(tmp_path):
    # Two Database objects are two replicas: each keeps its own pool. (Pure caching logic, so SQLite.)
    clock = ManualClock(START)
    url = f"sqlite:///{tmp_path / 'psych.db'}"
    replica_a = Database(url, PsychBase.metadata, "psych", clock)
    replica_b = Database(url, PsychBase.metadata, "psych", clock)
    replica_a.create_all()
    with replica_a.transaction() as uow:
        roster.replace_pool(uow.session, small_pool(), uow.now)
    profile = match.CaseProfile(case_no="x", dispute_type="婚姻家庭", township_code="371324-003")

    def ranking(db):
        with db.reading() as session:
            return [c.counsellor_id for c in match.match(profile, roster.load_pool(session), clock.now())]

    assert ranking(replica_a) == ranking(replica_b) == ["PC-9001", "PC-9002", "PC-9003"]
    with replica_b.reading() as session:
        pool_b = roster.load_pool(session)
    with replica_a.transaction() as uow:
        roster.update(uow.session, "PC-9001", {"active": False}, uow.now)
    assert ranking(replica_b) == ["PC-9002", "PC-9003"]
    with replica_b.transaction() as uow:
        roster.create(uow.session, {"name": "丁咨询师", "gender": "male", "birth_year": 1975, "occupation": "社工",
                                    "specialities": ["婚姻家庭", "亲子关系", "危机干预"], "certification": "中级社会工作师",
                                    "township": "兰陵镇", "phone": "13900000004", "weekly_capacity": 2,
                                    "availability": {"slots": small_pool()[0]["availability"]["slots"]}}, uow.now)
    assert ranking(replica_a)[0] == "PC-9004"
    with replica_b.reading() as session:
        assert roster.load_pool(session) is pool_b  # updated in place, not rebuilt
    replica_a.dispose()
    replica_b.dispose()


@pytest.mark.skipif(not using_postgres(), reason="several replicas on one database need PostgreSQL")
def test_two_replicas_scanning_expired_offers_offer_the_next_counsellor_once(container_factory, service_config,
                                                                              amqp):
    env = make_env(container_factory, service_config, amqp, gateway=False, replicas=2)
    cases = [f"371324-20260603-{n:06d}" for n in range(1, 7)]
    for case_no in cases:
        env.publish("psych_requested", psych_requested(case_no, parties=[]))
    # either replica may take any message or scan: watch the database, not one container
    wait_until(lambda: len(_all_offers(env)) == len(cases), 20, what="first offers")
    env.clock.advance(timedelta(hours=25))
    wait_until(lambda: len(_all_offers(env)) == 2 * len(cases), 20, what="second offers")
    for container in env.containers["psych"]:  # one more scan by each: nothing more may happen
        with entrypoint_waiter(container, "scan_expired_offers", timeout=10):
            pass
    with env.psych_db.transaction() as uow:
        per_case = dict(uow.session.execute(select(Offer.case_no, func.count()).group_by(Offer.case_no)).all())
    assert per_case == {case_no: 2 for case_no in cases}


def _all_offers(env) -> list[Offer]:
    with env.psych_db.transaction() as uow:
        return list(uow.session.scalars(select(Offer)))
