"""Offers: consent, decline and timeout falling through, the unmatched path, the one-minute promise."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.clock import ManualClock
from services.psych.match import CaseProfile, explain_no_match, load_rules_document, match
from services.psych.offers import (
    OfferClosed, OfferRecord, OfferRules, can_offer, first_offer_late, next_step, offer_deadline, offer_expiry,
    record_answer, tried_ids,
)

CONSENTED = can_offer("given", urgent=False)


def profile(**fields):
    return CaseProfile(**{"case_no": "371324-20250604-000007", "dispute_type": "医疗纠纷",
                          "township_code": "371324-003", **fields})


@pytest.fixture
def pool_of_three(make_pool, record):
    return make_pool(
        record("FIRST", specialities=["哀伤辅导", "危机干预"], urgent_callout=True, callout_response_minutes=30),
        record("SECOND", specialities=["哀伤辅导"], urgent_callout=True, callout_response_minutes=30),
        record("THIRD", specialities=["情绪疏导"], urgent_callout=True, callout_response_minutes=30),
    )


def apply(history, step):
    """What the service records for a step: timeouts, then the new offer."""
    history = [replace(o, status="timed_out") if o.counsellor_id in step.timed_out else o for o in history]
    if step.action == "offer":
        history.append(OfferRecord(step.counsellor_id, step.offered_at, step.expires_at))
    return history


def answer(history, counsellor_id, accepted, now):
    return [record_answer(o, accepted, now) if o.counsellor_id == counsellor_id else o for o in history]


# --- consent ------------------------------------------------------------------------

def test_recorded_consent_allows_an_offer():
    check = can_offer("given", urgent=False)
    assert check and check.basis == "consent"


@pytest.mark.parametrize("state", ["pending", "not_asked", "refused", "withdrawn"])
def test_no_offer_without_consent_outside_an_emergency(state):
    assert not can_offer(state, urgent=False, emergency_reason="当事人情绪激动")


def test_an_urgent_case_without_a_recorded_reason_is_not_an_emergency():
    check = can_offer("pending", urgent=True, emergency_reason="  ")
    assert not check and "须先记录理由" in check.reason


def test_emergency_override_records_the_reason():
    check = can_offer("not_asked", urgent=True, emergency_reason="扬言跳楼，现场民警请求心理干预")
    assert check and check.basis == "emergency"
    assert "扬言跳楼，现场民警请求心理干预" in check.reason


def test_a_county_can_let_refusal_always_stand():
    document = load_rules_document()
    strict = OfferRules.from_document({**document, "consent": {"emergency_overrides": ["pending", "not_asked"]}})
    assert not can_offer("refused", urgent=True, emergency_reason="扬言轻生", rules=strict)
    assert can_offer("pending", urgent=True, emergency_reason="扬言轻生", rules=strict)


def test_unknown_consent_state_is_an_error():
    with pytest.raises(ValueError):
        can_offer("maybe", urgent=False)


def test_nobody_is_offered_while_consent_is_missing(pool_of_three, now):
    candidates = match(profile(), pool_of_three, now)
    step = next_step(candidates, [], now, urgent=False, consent=can_offer("pending", urgent=False))
    assert step.action == "await_consent" and step.counsellor_id is None
    assert step.reason == "尚未取得当事人同意"


# --- progression --------------------------------------------------------------------

def test_decline_and_timeout_fall_through_to_the_next_candidate_then_unmatched(pool_of_three, now):
    clock = ManualClock(now)
    case = profile(risk_signals={"grief"}, urgent=True)
    consent = can_offer("not_asked", urgent=True, emergency_reason="家属情绪失控")
    history = []

    def step():
        candidates = match(case, pool_of_three, clock.now(), exclude=tried_ids(history))
        reason = explain_no_match(case, pool_of_three, clock.now(), exclude=tried_ids(history)) \
            if not candidates else None
        return next_step(candidates, history, clock.now(), urgent=True, consent=consent, no_match_reason=reason)

    first = step()
    assert (first.action, first.counsellor_id) == ("offer", "FIRST")
    assert first.expires_at == clock.now() + timedelta(minutes=30)
    assert first.reason.startswith("紧急情况")
    history = apply(history, first)

    clock.advance(timedelta(minutes=5))
    history = answer(history, "FIRST", accepted=False, now=clock.now())
    second = step()
    assert (second.action, second.counsellor_id) == ("offer", "SECOND")
    history = apply(history, second)

    clock.advance(timedelta(minutes=29))
    assert step().action == "wait"
    clock.advance(timedelta(minutes=1))
    third = step()
    assert (third.action, third.counsellor_id, third.timed_out) == ("offer", "THIRD", ("SECOND",))
    history = apply(history, third)
    assert [o.status for o in history] == ["declined", "timed_out", "pending"]

    clock.advance(timedelta(minutes=2))
    history = answer(history, "THIRD", accepted=False, now=clock.now())
    last = step()
    assert last.action == "unmatched"
    assert last.reason.startswith("已依次邀请 3 名心理咨询师（拒绝 2 人、超时未答复 1 人）；2 小时内没有可用的心理咨询师")


def test_acceptance_assigns(pool_of_three, now):
    candidates = match(profile(), pool_of_three, now)
    history = apply([], next_step(candidates, [], now, urgent=False, consent=CONSENTED))
    history = answer(history, "FIRST", accepted=True, now=now + timedelta(hours=1))
    step = next_step(candidates, history, now + timedelta(hours=2), urgent=False, consent=CONSENTED)
    assert (step.action, step.counsellor_id) == ("assigned", "FIRST")


def test_normal_offers_wait_a_day_before_timing_out(pool_of_three, now):
    candidates = match(profile(), pool_of_three, now)
    history = apply([], next_step(candidates, [], now, urgent=False, consent=CONSENTED))
    assert history[0].expires_at == now + timedelta(hours=24)
    assert next_step(candidates, history, now + timedelta(hours=23, minutes=59), urgent=False,
                     consent=CONSENTED).action == "wait"
    step = next_step(candidates, history, now + timedelta(hours=24), urgent=False, consent=CONSENTED)
    assert (step.action, step.counsellor_id, step.timed_out) == ("offer", "SECOND", ("FIRST",))


def test_answers_to_closed_offers_are_refused(now):
    offer = OfferRecord("A", now, offer_expiry(now, urgent=True))
    with pytest.raises(OfferClosed, match="expired"):
        record_answer(offer, True, now + timedelta(minutes=30))
    declined = record_answer(offer, False, now + timedelta(minutes=1))
    with pytest.raises(OfferClosed, match="declined"):
        record_answer(declined, True, now + timedelta(minutes=2))


def test_unmatched_with_no_candidates_carries_the_no_match_reason(make_pool, record, now):
    pool = make_pool(record("FULL", weekly_capacity=1))
    case = profile(urgent=True)
    candidates = match(case, pool, now, load={"FULL": 1})
    reason = explain_no_match(case, pool, now, load={"FULL": 1})
    step = next_step(candidates, [], now, urgent=True, consent=CONSENTED, no_match_reason=reason)
    assert step.action == "unmatched" and step.reason == reason
    assert "兰陵镇" in reason and "本周已满 1 人" in reason


# --- the one-minute promise for urgent cases --------------------------------------------

def test_urgent_request_is_offered_within_one_minute(reference_pool, now):
    clock = ManualClock(now)
    request_at = clock.now()
    case = profile(dispute_type="劳动争议", risk_signals={"extreme_risk"}, urgent=True, township_code="371324-009")
    clock.advance(timedelta(seconds=3))   # the time the event takes to arrive and be handled
    candidates = match(case, reference_pool, clock.now())
    step = next_step(candidates, [], clock.now(), urgent=True,
                     consent=can_offer("not_asked", urgent=True, emergency_reason="扬言极端行为"))
    assert step.action == "offer" and step.offered_at == clock.now()
    assert not first_offer_late(request_at, True, step.offered_at, clock.now())
    assert step.offered_at <= offer_deadline(request_at, urgent=True)


def test_the_first_offer_deadline_is_one_minute_for_urgent_cases(now):
    clock = ManualClock(now)
    request_at = clock.now()
    assert offer_deadline(request_at, urgent=True) == request_at + timedelta(minutes=1)
    clock.advance(timedelta(seconds=60))
    assert not first_offer_late(request_at, True, None, clock.now())
    clock.advance(timedelta(seconds=1))
    assert first_offer_late(request_at, True, None, clock.now())
    assert not first_offer_late(request_at, False, None, clock.now())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31),
                               timezones=st.just(timezone.utc)),
       handling=st.integers(min_value=0, max_value=60),
       township=st.sampled_from([f"371324-{n:03d}" for n in range(1, 19)]),
       dispute_type=st.sampled_from(["婚姻家庭", "劳动争议", "医疗纠纷", "征地拆迁", "其他"]))
def test_property_urgent_requests_get_an_offer_inside_the_minute(reference_pool, request_at, handling, township,
                                                                 dispute_type):
    clock = ManualClock(request_at)
    clock.advance(timedelta(seconds=handling))
    case = profile(dispute_type=dispute_type, township_code=township, urgent=True, risk_signals={"extreme_risk"})
    step = next_step(match(case, reference_pool, clock.now()), [], clock.now(), urgent=True,
                     consent=can_offer("pending", urgent=True, emergency_reason="现场危机"))
    assert step.action == "offer"
    assert not first_offer_late(request_at, True, step.offered_at, clock.now())
