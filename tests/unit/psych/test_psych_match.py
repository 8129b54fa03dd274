"""Matching: each hard constraint, ranking on hand-built profiles, the pool index, exactness."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.psych.match import (
    CaseProfile, InvalidRecord, Pool, _Query, default_rules, explain_no_match, load_reference, match,
    validate_record,
)

LANLING = "371324-003"
JINLING = "371324-010"
XIACUN = "371324-018"


def ids(candidates):
    return [c.counsellor_id for c in candidates]


def case(**fields):
    defaults = dict(case_no="371324-20250604-000001", dispute_type="婚姻家庭", township_code=LANLING)
    return CaseProfile(**{**defaults, **fields})


# --- hard constraints -----------------------------------------------------------

def test_inactive_counsellors_are_never_matched(make_pool, record, now):
    pool = make_pool(record("ON"), record("OFF", active=False))
    assert ids(match(case(), pool, now)) == ["ON"]


def test_deactivate_takes_a_counsellor_out_and_upsert_brings_them_back(make_pool, record, now):
    pool = make_pool(record("A"), record("B"))
    pool.deactivate("A")
    assert ids(match(case(), pool, now)) == ["B"]
    assert pool.get("A").active is False and len(pool) == 2
    pool.upsert(record("A"))
    assert sorted(ids(match(case(), pool, now))) == ["A", "B"]


def test_a_full_week_excludes_and_one_free_place_admits(make_pool, record, now):
    pool = make_pool(record("A", weekly_capacity=2))
    assert ids(match(case(), pool, now, load={"A": 2})) == []
    assert ids(match(case(), pool, now, load={"A": 1})) == ["A"]


def test_zero_capacity_is_never_matched(make_pool, record, now):
    assert ids(match(case(), make_pool(record("A", weekly_capacity=0)), now)) == []


def test_recusal_village_is_a_conflict(make_pool, record, now):
    pool = make_pool(record("RECUSED", villages=["371324-003-007"]), record("FREE"))
    assert ids(match(case(village="371324-003-007"), pool, now)) == ["FREE"]
    assert sorted(ids(match(case(village="371324-003-008"), pool, now))) == ["FREE", "RECUSED"]


def test_recusal_person_is_a_conflict(make_pool, record, now):
    pool = make_pool(record("RECUSED", persons=["hash-of-party-1"]), record("FREE"))
    assert ids(match(case(party_hashes={"hash-of-party-1", "hash-of-party-2"}), pool, now)) == ["FREE"]
    assert sorted(ids(match(case(party_hashes={"hash-of-party-3"}), pool, now))) == ["FREE", "RECUSED"]


def test_conflict_outweighs_continuity(make_pool, record, now):
    pool = make_pool(record("PREVIOUS", persons=["party"]))
    assert ids(match(case(party_hashes={"party"}, previous_counsellor_ids={"PREVIOUS"}), pool, now)) == []


def test_already_offered_counsellors_are_excluded(make_pool, record, now):
    pool = make_pool(record("A"), record("B"))
    assert ids(match(case(), pool, now, exclude={"A"})) == ["B"]


def test_urgent_needs_availability_within_hours_normal_within_days(make_pool, record, now):
    later_today = [{"day": "wed", "start": "14:00", "end": "17:00"}]   # 4 hours after 10:00
    pool = make_pool(record("LATER", slots=later_today))
    assert ids(match(case(urgent=True), pool, now)) == []
    [candidate] = match(case(urgent=False), pool, now)
    assert candidate.available_from == now + timedelta(hours=4)


def test_availability_window_boundary_is_inclusive(make_pool, record, now):
    window = default_rules().urgent_within
    start = (now + window).strftime("%H:%M")
    pool = make_pool(record("EDGE", slots=[{"day": "wed", "start": start, "end": "23:00"}]))
    assert ids(match(case(urgent=True), pool, now)) == ["EDGE"]
    assert ids(match(case(urgent=True), pool, now + timedelta(minutes=-1))) == []


def test_urgent_callout_counts_only_for_urgent_cases(make_pool, record, now):
    pool = make_pool(record("CALLOUT", slots=[], urgent_callout=True, callout_response_minutes=45))
    [candidate] = match(case(urgent=True), pool, now)
    assert candidate.available_from == now + timedelta(minutes=45)
    assert "45 分钟" in candidate.reasons[-1]
    assert ids(match(case(urgent=False), pool, now)) == []


def test_a_callout_slower_than_the_urgent_window_does_not_qualify(make_pool, record, now):
    pool = make_pool(record("SLOW", slots=[], urgent_callout=True, callout_response_minutes=180))
    assert ids(match(case(urgent=True), pool, now)) == []


def test_weekly_slots_wrap_around_the_week(make_pool, record, now):
    monday = [{"day": "mon", "start": "09:00", "end": "10:00"}]
    pool = make_pool(record("MONDAY", slots=monday))
    sunday_evening = now + timedelta(days=4, hours=12)     # Sunday 22:00
    [candidate] = match(case(), pool, sunday_evening)
    assert candidate.available_from == now + timedelta(days=5, hours=-1)   # Monday 09:00


def test_leave_delays_availability(make_pool, record, now):
    pool = make_pool(record("AWAY", away_until=(now + timedelta(days=1)).isoformat(),
                            slots=[{"day": "thu", "start": "09:00", "end": "17:00"}]))
    assert ids(match(case(urgent=True), pool, now)) == []
    [candidate] = match(case(), pool, now)
    assert candidate.available_from == now + timedelta(days=1)


# --- ranking ----------------------------------------------------------------------

def test_medical_death_case_prefers_grief_and_crisis_specialists(make_pool, record, now):
    pool = make_pool(
        record("FAMILY", specialities=["婚姻家庭"]),
        record("CALMING", specialities=["情绪疏导"]),
        record("GRIEF", specialities=["哀伤辅导"]),
        record("GRIEF_CRISIS", specialities=["哀伤辅导", "危机干预"]),
    )
    ranked = match(case(dispute_type="医疗纠纷", risk_signals={"grief"}), pool, now)
    assert ids(ranked) == ["GRIEF_CRISIS", "GRIEF", "CALMING", "FAMILY"]
    assert ranked[0].reasons[0].startswith("专长 +")
    assert "哀伤辅导" in ranked[0].reasons[0] and "危机干预" in ranked[0].reasons[0]
    assert ranked[0].score == pytest.approx(sum(ranked[0].parts.values()), abs=0.1)


def test_labour_dispute_with_extreme_risk_prefers_crisis_and_work_stress(make_pool, record, now):
    pool = make_pool(
        record("CALMING", specialities=["情绪疏导"]),
        record("CRISIS_WORK", specialities=["危机干预", "职场压力"]),
        record("WORK", specialities=["职场压力"]),
    )
    assert ids(match(case(dispute_type="劳动争议", risk_signals={"extreme_risk"}), pool, now)) == \
        ["CRISIS_WORK", "WORK", "CALMING"]


def test_abandoned_elderly_couple_prefers_elderly_speciality(make_pool, record, now):
    pool = make_pool(record("YOUTH", specialities=["青少年"]), record("ELDERLY", specialities=["老年"]))
    assert ids(match(case(risk_signals={"elderly"}), pool, now)) == ["ELDERLY", "YOUTH"]


def test_nearer_counsellor_ranks_first_all_else_equal(make_pool, record, now):
    pool = make_pool(record("FAR", township_code=XIACUN), record("NEAR", township_code=JINLING),
                     record("SAME", township_code=LANLING))
    ranked = match(case(), pool, now)
    assert ids(ranked) == ["SAME", "NEAR", "FAR"]
    assert "同在兰陵镇" in ranked[0].reasons[1] and "住金岭镇" in ranked[1].reasons[1]


def test_lighter_load_ranks_first(make_pool, record, now):
    pool = make_pool(record("BUSY", weekly_capacity=4), record("FREE", weekly_capacity=4))
    assert ids(match(case(), pool, now, load={"BUSY": 3, "FREE": 1})) == ["FREE", "BUSY"]


def test_continuity_puts_the_previous_counsellor_first(make_pool, record, now):
    pool = make_pool(record("A"), record("B"), record("C"))
    ranked = match(case(previous_counsellor_ids={"C"}), pool, now)
    assert ids(ranked)[0] == "C"
    assert any(r.startswith("连续性 +") for r in ranked[0].reasons)


def test_gender_and_age_preferences(make_pool, record, now):
    pool = make_pool(record("MAN_45", gender="male", birth_year=1980),
                     record("WOMAN_55", gender="female", birth_year=1970),
                     record("WOMAN_45", gender="female", birth_year=1980))
    ranked = match(case(preferred_gender="female", preferred_age=(40, 50)), pool, now)
    # gender 5 + age 5; gender 5 + age 2.5 (5 years outside, tolerance 10); gender 0 + age 5
    assert ids(ranked) == ["WOMAN_45", "WOMAN_55", "MAN_45"]
    assert [c.parts["gender"] + c.parts["age"] for c in ranked] == [10.0, 7.5, 5.0]


def test_urgent_cases_weigh_proximity_with_the_urgent_weights(make_pool, record, now):
    rules = default_rules()
    pool = make_pool(record("SAME", urgent_callout=True, callout_response_minutes=30))
    [normal] = match(case(), pool, now)
    [urgent] = match(case(urgent=True), pool, now)
    assert normal.parts["proximity"] == rules.weights["proximity"]
    assert urgent.parts["proximity"] == rules.urgent_weights["proximity"]


def test_ties_are_broken_by_id_and_limit_applies(make_pool, record, now):
    pool = make_pool(*(record(f"C{n}") for n in (3, 1, 2)))
    assert ids(match(case(), pool, now, limit=2)) == ["C1", "C2"]
    assert match(case(), pool, now, limit=0) == []


def test_unknown_dispute_type_falls_back_and_says_so(make_pool, record, now):
    [candidate] = match(case(dispute_type="新类型"), make_pool(record("A")), now)
    assert "未配置" in candidate.reasons[0]


def test_to_dict_is_the_api_shape(make_pool, record, now):
    [candidate] = match(case(), make_pool(record("A")), now)
    shape = candidate.to_dict()
    assert set(shape) == {"counsellor_id", "score", "reasons", "parts", "available_from"}
    assert shape["available_from"].endswith("+08:00")


# --- the pool -----------------------------------------------------------------------

def test_upsert_moves_a_counsellor_between_cells(make_pool, record, now):
    pool = make_pool(record("MOVER", township_code=XIACUN), record("STAY", township_code=JINLING))
    assert ids(match(case(), pool, now)) == ["STAY", "MOVER"]
    pool.upsert(record("MOVER", township_code=LANLING))
    assert ids(match(case(), pool, now)) == ["MOVER", "STAY"]
    pool.upsert(record("MOVER", township_code=LANLING, villages=["371324-003-001"]))
    assert ids(match(case(village="371324-003-001"), pool, now)) == ["STAY"]
    pool.upsert(record("MOVER", township_code=LANLING))
    assert ids(match(case(village="371324-003-001"), pool, now)) == ["MOVER", "STAY"]


def test_invalid_records_are_rejected_with_field_reasons(make_pool, record, townships):
    pool = make_pool()
    bad = record("BAD", township_code="999999-001", specialities=["占卜"], gender="x",
                 slots=[{"day": "wed", "start": "12:00", "end": "09:00"}])
    with pytest.raises(InvalidRecord) as raised:
        pool.upsert(bad)
    assert {"gender", "availability.slots"} <= set(raised.value.fields)
    problems = validate_record(record("BAD", township_code="999999-001", specialities=["占卜"]),
                               townships={t.code: t for t in townships})
    assert set(problems) == {"township_code", "specialities"}
    assert len(pool) == 0


def test_callout_requires_a_response_time(record, townships):
    problems = validate_record(record("X", urgent_callout=True, callout_response_minutes=None),
                               townships={t.code: t for t in townships})
    assert "availability.callout_response_minutes" in problems


def test_record_round_trip(reference_pool):
    for counsellor in reference_pool.counsellors()[:20]:
        assert type(counsellor).from_record(counsellor.to_record()) == counsellor


# --- no match -------------------------------------------------------------------------

def test_explain_no_match_counts_each_failing_constraint(make_pool, record, now):
    pool = make_pool(record("FULL", weekly_capacity=1), record("OFF", active=False),
                     record("FAR_LATE", township_code=XIACUN, slots=[{"day": "fri", "start": "09:00", "end": "10:00"}]))
    profile = case(urgent=True)
    assert match(profile, pool, now, load={"FULL": 1}) == []
    reason = explain_no_match(profile, pool, now, load={"FULL": 1})
    assert reason.startswith("2 小时内没有可用的心理咨询师")
    assert "兰陵镇及附近（15 公里内）在册 2 人（停用 1 人、本周已满 1 人、可用 0 人）" in reason
    assert "全县在册 3 人（停用 1 人、本周已满 1 人、时间不合 1 人、可用 0 人）" in reason


def test_explain_no_match_points_elsewhere_when_only_far_counsellors_are_free(make_pool, record, now):
    pool = make_pool(record("NEAR_FULL", weekly_capacity=1), record("FAR", township_code=XIACUN))
    reason = explain_no_match(case(), pool, now, load={"NEAR_FULL": 1}, exclude={"FAR"})
    assert reason.startswith("3 天内没有可用的心理咨询师")
    assert "已邀请过 1 人" in reason
    reason = explain_no_match(case(), pool, now, load={"NEAR_FULL": 1})
    assert "全县其他地方仍有 1 人" in reason


# --- exactness of the pruned search -------------------------------------------------

def brute_force(profile, pool, now, load, limit):
    """Score every counsellor: what match() must return, without its index."""
    query = _Query(profile, pool, now, pool.rules, load, ())
    scored = []
    for counsellor in pool.counsellors():
        failure, _ = query.failure(counsellor)
        if not failure:
            scored.append((round(sum(query.parts(counsellor).values()), 9), counsellor.id))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [cid for _, cid in scored[:limit]]


def test_pruned_matching_equals_scoring_everyone(townships, now):
    rng = random.Random(7)
    _, records = load_reference()
    codes = [t.code for t in townships]
    clones = []
    for n in range(4):
        for r in records:
            clones.append({**r, "id": f"{r['id']}-{n}", "township_code": rng.choice(codes)})
    pool = Pool(townships, clones)
    rules = pool.rules
    for n in range(60):
        township = rng.choice(codes)
        profile = CaseProfile(
            case_no=f"c{n}", dispute_type=rng.choice(list(rules.needs_by_dispute_type)), township_code=township,
            risk_signals=set(rng.sample(list(rules.risk_signals), rng.randint(0, 2))),
            village=f"{township}-{rng.randint(1, 60):03d}",
            preferred_gender=rng.choice((None, "female", "male")),
            preferred_age=rng.choice((None, (30, 45))), urgent=rng.random() < 0.4,
            previous_counsellor_ids={rng.choice(clones)["id"]} if rng.random() < 0.3 else set())
        when = now + timedelta(minutes=rng.randrange(7 * 24 * 60))
        load = {r["id"]: rng.randint(0, 3) for r in rng.sample(clones, 400)}
        limit = rng.choice((1, 5, 10))
        assert ids(match(profile, pool, when, load=load, limit=limit)) == \
            brute_force(profile, pool, when, load, limit), profile


def test_naive_now_is_rejected(make_pool, record, now):
    with pytest.raises(ValueError):
        match(case(), make_pool(record("A")), now.replace(tzinfo=None))
