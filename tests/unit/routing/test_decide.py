"""Deciding where and who: mechanisms, levels, ranking and recusal, escalation, party choice."""
from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.decide import (
    RULES_DIR, CannotEscalate, CaseFacts, Rules, RulesError, decide, escalate, rank_mediators, staff_refs,
    validate_choice,
)
from services.routing.directory import Directory
from services.routing.domain import LEVELS, Classification, Severity

DIRECTORY = Directory.from_reference()
TOWNSHIP = "371324-009"  # 南桥镇


def kind(dispute_type="邻里纠纷", gov_category="城乡建设", psych=False, **severity) -> Classification:
    return Classification(dispute_type=dispute_type, gov_category=gov_category, psych_needed=psych,
                          severity=Severity(**severity))


def a_village(township=TOWNSHIP, index=3):
    return DIRECTORY.villages_of_township(township)[index]


def a_grid(township=TOWNSHIP, index=3):
    return DIRECTORY.grids_of_village(a_village(township, index).code)[0]


def rule_ids(decision) -> str:
    return " ".join(decision.reasons)


# --- mechanisms -----------------------------------------------------------------------------


def test_general_dispute_goes_to_the_supermarket():
    village = a_village()
    decision = decide(CaseFacts("c1", "hotline", township="南桥", village=village.code), kind(), DIRECTORY)
    assert (decision.mechanism, decision.level, decision.unit) == ("supermarket", "village", None)
    assert DIRECTORY.mediator(decision.mediators[0]).village == village.code
    assert "supermarket-general" in rule_ids(decision) and "village-first" in rule_ids(decision)


@pytest.mark.parametrize("dispute_type, unit", [
    ("医疗纠纷", "U-MEDICAL-COMMITTEE"), ("劳动争议", "U-LABOUR-ARBITRATION"), ("交通事故", "U-TRAFFIC-COMMITTEE"),
    ("物业纠纷", "U-HOUSING"), ("消费纠纷", "U-MARKET"), ("环境污染", "U-ECOLOGY"), ("城市管理", "U-URBAN-ADMIN"),
    ("征地拆迁", "U-NATURAL-RESOURCES"),
])
def test_professional_dispute_goes_to_its_unit(dispute_type, unit):
    decision = decide(CaseFacts("c2", "hotline", township=TOWNSHIP), kind(dispute_type), DIRECTORY)
    assert (decision.mechanism, decision.unit, decision.level) == ("specialised", unit, "county")
    assert decision.mediators == () and decision.co_units == () and decision.joint_plan is None
    assert DIRECTORY.unit(unit).name in rule_ids(decision)


def test_a_complaint_that_is_not_a_dispute_goes_to_the_department_of_its_category():
    decision = decide(CaseFacts("c3", "app", township=TOWNSHIP, app_section="ask_gov"),
                      kind("其他", "教育文体"), DIRECTORY)
    assert (decision.mechanism, decision.unit) == ("specialised", "U-EDUCATION")


def test_major_cross_department_dispute_is_joint_with_a_plan():
    case = CaseFacts("c4", "petition", township=TOWNSHIP, people_count=40, petition_form="visit")
    decision = decide(case, kind("征地拆迁", "国土资源", people=40, mass_risk=True), DIRECTORY)
    assert (decision.mechanism, decision.level, decision.unit) == ("joint", "county", "U-NATURAL-RESOURCES")
    assert decision.co_units[0] == "U-HOUSING"
    assert {"U-PUBLIC-SECURITY", "U-PETITION"} <= set(decision.co_units)
    assert len(set(decision.co_units)) == len(decision.co_units) and decision.unit not in decision.co_units
    plan = decision.joint_plan
    assert plan.lead_unit == decision.unit and plan.co_units == decision.co_units
    assert "县自然资源局牵头" in plan.summary and "县住房和城乡建设局" in plan.summary and "南桥镇" in plan.summary
    assert plan.steps
    assert len(decision.mediators) == 2  # a hard case: 多对一


def test_land_acquisition_with_a_group_is_joint_even_without_other_signals():
    decision = decide(CaseFacts("c5", "hotline", township=TOWNSHIP, people_count=6), kind("征地拆迁"), DIRECTORY)
    assert decision.mechanism == "joint" and "joint-cross-department-group" in rule_ids(decision)
    small = decide(CaseFacts("c5b", "hotline", township=TOWNSHIP, people_count=2), kind("征地拆迁"), DIRECTORY)
    assert small.mechanism == "specialised"


def test_a_major_general_dispute_is_led_by_the_mediation_centre():
    decision = decide(CaseFacts("c6", "hotline", township=TOWNSHIP), kind("婚姻家庭", extreme_risk=True), DIRECTORY)
    assert decision.mechanism == "joint" and decision.unit == "U-MEDIATION-CENTRE"
    assert "U-PUBLIC-SECURITY" in decision.co_units and decision.psych_needed


@pytest.mark.parametrize("channel", ["grid", "walkin"])
def test_grassroots_dispute_from_a_township_channel_is_chain(channel):
    grid = a_grid()
    case = CaseFacts("c7", channel, township=TOWNSHIP, grid=grid.code if channel == "grid" else None,
                     centre=f"{TOWNSHIP}-TJ" if channel == "walkin" else None)
    decision = decide(case, kind("合同债务"), DIRECTORY)
    assert decision.mechanism == "chain"
    assert decision.centre == f"{TOWNSHIP}-TJ"
    assert decision.room == DIRECTORY.room_guiding(TOWNSHIP).code


def test_walkin_at_the_county_centre_is_handled_at_county():
    case = CaseFacts("c8", "walkin", township=TOWNSHIP, centre="371324-TJ")
    decision = decide(case, kind("合同债务"), DIRECTORY)
    assert (decision.mechanism, decision.level) == ("supermarket", "county")


# --- levels ---------------------------------------------------------------------------------


def test_petition_from_many_people_starts_at_county_and_from_one_at_township():
    many = decide(CaseFacts("l1", "petition", township=TOWNSHIP, people_count=8), kind(), DIRECTORY)
    one = decide(CaseFacts("l2", "petition", township=TOWNSHIP, people_count=1), kind(), DIRECTORY)
    assert many.level == "county" and "collective-petition" in rule_ids(many)
    assert one.level == "township" and "petition-local" in rule_ids(one)


def test_repeat_petition_goes_to_county():
    case = CaseFacts("l3", "petition", township=TOWNSHIP, repeat_of_party=True)
    assert decide(case, kind(), DIRECTORY).level == "county"


def test_opinion_lead_starts_at_township_or_county_without_one():
    assert decide(CaseFacts("l4", "opinion", township=TOWNSHIP), kind(), DIRECTORY).level == "township"
    assert decide(CaseFacts("l5", "opinion"), kind(), DIRECTORY).level == "county"


def test_grid_report_starts_at_the_grid_with_its_grid_worker():
    grid = a_grid()
    decision = decide(CaseFacts("l6", "grid", grid=grid.code), kind(), DIRECTORY)
    assert decision.level == "grid" and decision.township == TOWNSHIP and decision.village == grid.village
    assert decision.grid_worker == grid.grid_worker and decision.mediators == ()
    refs = staff_refs(decision, DIRECTORY)
    assert refs["mediators"][0]["id"] == grid.grid_worker and refs["mediators"][0]["role"] == "grid_worker"


def test_a_grid_report_without_a_known_grid_moves_up():
    village = a_village()
    decision = decide(CaseFacts("l7", "grid", grid="371324-009-999-01", village=village.code), kind(), DIRECTORY)
    assert decision.level == "village" and any("不在名录" in r for r in decision.reasons)


def test_app_miao_asks_for_the_studio_at_county():
    decision = decide(CaseFacts("l8", "app", township="371324-003", app_section="miao"), kind("婚姻家庭"), DIRECTORY)
    assert (decision.level, decision.room) == ("county", "371324-TJ-01")
    assert decision.mediators[0] == DIRECTORY.room("371324-TJ-01").lead


def test_unknown_township_goes_to_county_with_a_note():
    decision = decide(CaseFacts("l9", "hotline", township="火星镇"), kind(), DIRECTORY)
    assert decision.level == "county" and decision.township is None
    assert any("火星镇" in r for r in decision.reasons)


def test_repeat_complaint_is_not_sent_down_to_the_village():
    case = CaseFacts("l10", "hotline", township=TOWNSHIP, village=a_village().code, repeat_of_party=True)
    assert decide(case, kind(), DIRECTORY).level == "township"


def test_village_implies_its_township_when_they_disagree():
    village = a_village("371324-004")
    decision = decide(CaseFacts("l11", "hotline", township=TOWNSHIP, village=village.code), kind(), DIRECTORY)
    assert decision.township == "371324-004" and any("以村居为准" in r for r in decision.reasons)


def test_decisions_are_deterministic_and_json_able():
    case = CaseFacts("d1", "petition", township=TOWNSHIP, people_count=12)
    first = decide(case, kind("征地拆迁", people=12), DIRECTORY)
    assert first == decide(case, kind("征地拆迁", people=12), DIRECTORY)
    assert json.loads(json.dumps(first.to_dict(), ensure_ascii=False))["joint_plan"]["lead_unit"] == first.unit


# --- ranking and recusal --------------------------------------------------------------------


def test_ranking_is_sorted_and_explained():
    case = CaseFacts("r1", "walkin", township=TOWNSHIP)
    ranked = rank_mediators(case, "土地山林", "township", DIRECTORY)
    assert len(ranked) == len(DIRECTORY.mediators(level="township", township=TOWNSHIP))
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    for candidate in ranked:
        assert candidate.score == pytest.approx(sum(value for _, value in candidate.parts), abs=0.01)
        assert candidate.reasons


def test_specialty_and_full_time_count():
    case = CaseFacts("r2", "walkin", township=TOWNSHIP)
    ranked = rank_mediators(case, "土地山林", "township", DIRECTORY)
    fits = [c for c in ranked if "土地山林" in DIRECTORY.mediator(c.mediator).specialties]
    others = [c for c in ranked if c not in fits]
    assert fits and others
    assert min(c.score for c in fits if DIRECTORY.mediator(c.mediator).full_time) > max(c.score for c in others)


def test_load_lowers_the_rank_and_a_full_mediator_is_not_a_candidate():
    case = CaseFacts("r3", "walkin", township=TOWNSHIP)
    top = rank_mediators(case, "合同债务", "township", DIRECTORY)[0]
    capacity = DIRECTORY.mediator(top.mediator).capacity
    busy = rank_mediators(case, "合同债务", "township", DIRECTORY, load={top.mediator: capacity - 1})
    assert next(c.score for c in busy if c.mediator == top.mediator) < top.score
    full = rank_mediators(case, "合同债务", "township", DIRECTORY, load={top.mediator: capacity})
    assert top.mediator not in {c.mediator for c in full}


def test_nearer_mediators_rank_higher_when_all_else_is_equal():
    village = a_village()
    case = CaseFacts("r4", "hotline", township=TOWNSHIP, village=village.code)
    ranked = rank_mediators(case, "邻里纠纷", "work_area", DIRECTORY)
    compared = 0
    for position, nearer in enumerate(ranked):
        for farther in ranked[position + 1:]:
            a, b = dict(nearer.parts), dict(farther.parts)
            if {k: v for k, v in a.items() if k != "distance"} == {k: v for k, v in b.items() if k != "distance"}:
                assert a["distance"] >= b["distance"]
                compared += 1
    assert compared


def recusing_mediator(level):
    return next(m for m in DIRECTORY.mediators(level=level) if m.recusal_villages)


def test_a_mediator_never_gets_a_case_from_a_village_they_recuse_from():
    mediator = recusing_mediator("township")
    village = mediator.recusal_villages[0]
    case = CaseFacts("r5", "walkin", township=mediator.township, village=village)
    for dispute_type in mediator.specialties:
        assert mediator.id not in {c.mediator for c in rank_mediators(case, dispute_type, "township", DIRECTORY)}
    decision = decide(case, kind(mediator.specialties[0]), DIRECTORY, at_level="township")
    assert mediator.id not in decision.mediators
    assert any(mediator.id in r and "回避" in r for r in decision.reasons)


def test_a_party_from_a_recused_village_also_excludes_the_mediator():
    mediator = next(m for m in DIRECTORY.mediators(level="village") if m.recusal_villages)
    case = CaseFacts("r6", "hotline", township=mediator.township, village=mediator.village,
                     party_villages=(mediator.recusal_villages[0],))
    decision = decide(case, kind("邻里纠纷"), DIRECTORY, at_level="village")
    assert mediator.id not in decision.mediators
    if decision.mediators:  # someone else from the same work area steps in
        chosen = DIRECTORY.mediator(decision.mediators[0])
        assert DIRECTORY.village(chosen.village).work_area == DIRECTORY.village(mediator.village).work_area


villages = st.sampled_from(DIRECTORY.villages())


@settings(max_examples=150, deadline=None)
@given(village=villages, party=villages, channel=st.sampled_from(["hotline", "walkin", "petition", "app"]),
       dispute_type=st.sampled_from(["邻里纠纷", "婚姻家庭", "土地山林", "合同债务", "征地拆迁"]),
       level=st.sampled_from([None, "village", "work_area", "township", "county"]))
def test_recusal_holds_for_any_case(village, party, channel, dispute_type, level):
    case = CaseFacts("p", channel, township=village.township, village=village.code, party_villages=(party.code,),
                     people_count=12 if dispute_type == "征地拆迁" else None)
    decision = decide(case, kind(dispute_type), DIRECTORY, at_level=level)
    for mediator_id in decision.mediators:
        recused = set(DIRECTORY.mediator(mediator_id).recusal_villages)
        assert not recused & {village.code, party.code}


# --- returned cases -------------------------------------------------------------------------


def test_a_returned_case_never_goes_back_to_the_same_mediator():
    case = CaseFacts("t1", "walkin", township=TOWNSHIP)
    returned: list[str] = []
    pool = {m.id for m in DIRECTORY.mediators(level="township", township=TOWNSHIP)}
    for _ in range(len(pool)):
        decision = decide(case, kind("合同债务"), DIRECTORY, exclude_mediators=returned, at_level="township")
        assert decision.mediators and decision.mediators[0] not in returned
        returned.append(decision.mediators[0])
    assert set(returned) == pool
    exhausted = decide(case, kind("合同债务"), DIRECTORY, exclude_mediators=returned, at_level="township")
    assert exhausted.mediators == ()
    assert any("人工指派" in r for r in exhausted.reasons)


def test_a_returned_village_case_falls_back_to_the_work_area():
    village = next(v for v in DIRECTORY.villages() if len(DIRECTORY.mediators(village=v.code)) == 1)
    only = DIRECTORY.mediators(village=village.code)[0]
    case = CaseFacts("t2", "hotline", township=village.township, village=village.code)
    decision = decide(case, kind(), DIRECTORY, exclude_mediators=[only.id], at_level="village")
    assert decision.mediators and only.id not in decision.mediators
    assert DIRECTORY.mediator(decision.mediators[0]).village in {
        v.code for v in DIRECTORY.villages_of_work_area(village.work_area)}


# --- escalation -----------------------------------------------------------------------------


def test_the_whole_chain_from_grid_to_county():
    grid = a_grid()
    village = DIRECTORY.village(grid.village)
    case = CaseFacts("e1", "grid", grid=grid.code)
    guiding = DIRECTORY.room_guiding(TOWNSHIP)
    expected = [
        ("village", village.code, None),
        ("work_area", village.work_area, None),
        ("township", f"{TOWNSHIP}-TJ", None),
        ("county", guiding.code, guiding.code),
    ]
    level, reached = "grid", []
    while True:
        try:
            step = escalate(level, case, DIRECTORY)
        except CannotEscalate:
            break
        assert step.from_level == level and step.reasons
        reached.append((step.level, step.target, step.room))
        decision = decide(case, kind(), DIRECTORY, at_level=step.level, room=step.room)
        assert decision.level == step.level
        level = step.level
    assert reached == expected
    assert "连锁" in step.reasons[-1] and guiding.name in step.reasons[-1]


def test_at_county_an_escalated_case_goes_to_the_guiding_room_first():
    case = CaseFacts("e2", "walkin", township=TOWNSHIP)
    step = escalate("township", case, DIRECTORY)
    decision = decide(case, kind("合同债务"), DIRECTORY, at_level=step.level, room=step.room)
    assert decision.room == DIRECTORY.room_guiding(TOWNSHIP).code
    assert DIRECTORY.mediator(decision.mediators[0]).room == decision.room


def test_levels_without_a_place_are_skipped():
    step = escalate("village", CaseFacts("e3", "hotline", township=TOWNSHIP), DIRECTORY)
    assert step.level == "township" and any("跳过" in r for r in step.reasons)
    step = escalate("grid", CaseFacts("e4", "hotline"), DIRECTORY)
    assert (step.level, step.target, step.room) == ("county", "371324-TJ", None)


def test_nothing_above_county():
    with pytest.raises(CannotEscalate):
        escalate("county", CaseFacts("e5", "hotline", township=TOWNSHIP), DIRECTORY)
    with pytest.raises(ValueError):
        escalate("province", CaseFacts("e6", "hotline"), DIRECTORY)


# --- party choice (超市 点将) --------------------------------------------------------------------


def test_one_or_several_valid_choices_are_honoured_in_order():
    village = a_village()
    case = CaseFacts("s1", "hotline", township=TOWNSHIP, village=village.code)
    township_mediator = DIRECTORY.mediators(level="township", township=TOWNSHIP)[0].id
    village_mediator = DIRECTORY.mediators(village=village.code)[0].id
    assert validate_choice(case, [township_mediator], DIRECTORY) == ([township_mediator], {})
    accepted, refused = validate_choice(case, ["MC-01-1", village_mediator, township_mediator], DIRECTORY)
    assert accepted == ["MC-01-1", village_mediator, township_mediator] and refused == {}


def test_invalid_choices_are_refused_with_a_reason():
    village = a_village()
    elsewhere = DIRECTORY.mediators(level="township", township="371324-001")[0]
    full = DIRECTORY.mediators(level="township", township=TOWNSHIP)[1]
    returned = DIRECTORY.mediators(level="township", township=TOWNSHIP)[2]
    recusing = next(m for m in DIRECTORY.mediators(level="county") if m.recusal_villages)
    case = CaseFacts("s2", "hotline", township=TOWNSHIP, village=village.code,
                     party_villages=(recusing.recusal_villages[0],))
    accepted, refused = validate_choice(
        case, ["MX-404", elsewhere.id, full.id, returned.id, recusing.id], DIRECTORY,
        load={full.id: full.capacity}, exclude_mediators=[returned.id])
    assert accepted == []
    assert "没有" in refused["MX-404"]
    assert "只受理" in refused[elsewhere.id]
    assert "容量" in refused[full.id]
    assert "退回" in refused[returned.id]
    assert "回避" in refused[recusing.id]


def test_a_village_mediator_cannot_be_picked_once_the_case_is_at_county():
    village = a_village()
    village_mediator = DIRECTORY.mediators(village=village.code)[0].id
    case = CaseFacts("s3", "hotline", township=TOWNSHIP, village=village.code)
    accepted, refused = validate_choice(case, [village_mediator, "MC-02-1"], DIRECTORY, level="county")
    assert accepted == ["MC-02-1"] and "县级" in refused[village_mediator]


def test_an_inactive_mediator_is_refused():
    records = DIRECTORY.to_records()
    records["mediators"][0]["active"] = False
    directory = Directory.from_records(records)
    inactive = records["mediators"][0]["id"]
    accepted, refused = validate_choice(CaseFacts("s4", "hotline", township=TOWNSHIP), [inactive], directory)
    assert accepted == [] and "暂停" in refused[inactive]


def test_too_many_choices():
    county = [m.id for m in DIRECTORY.mediators(level="county")][:4]
    case = CaseFacts("s5", "hotline", township="371324-018")
    accepted, refused = validate_choice(case, county, DIRECTORY)
    assert len(accepted) == Rules.load().max_party_choice == 3 and "最多" in refused[county[3]]


# --- rules ----------------------------------------------------------------------------------


def test_shipped_rules_match_the_directory():
    assert Rules.load().problems(DIRECTORY) == []


def copy_rules(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    for name in ("mechanism.yaml", "level.yaml", "ranking.yaml"):
        shutil.copy(RULES_DIR / name, folder / name)
    return folder


@pytest.mark.parametrize("file, old, new, message", [
    ("mechanism.yaml", "when: {major: true}", "when: {majr: true}", "unknown condition"),
    ("mechanism.yaml", "mechanism: joint\n", "mechanism: jointly\n", "mechanism must be"),
    ("level.yaml", "level: township\n    reason: \"由属地", "level: town\n    reason: \"由属地", "level must be"),
    ("level.yaml", "people_at_least: 5}", "people_at_least: many}", "number"),
    ("mechanism.yaml", "{dispute_type}属专业性", "{dispute}属专业性", "placeholders"),
])
def test_broken_rules_are_refused_when_loaded(tmp_path, file, old, new, message):
    folder = copy_rules(tmp_path)
    text = (folder / file).read_text(encoding="utf-8")
    assert old in text
    (folder / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RulesError, match=message):
        Rules.load(folder)


def test_a_county_can_change_a_rule(tmp_path):
    folder = copy_rules(tmp_path)
    path = folder / "level.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "when: {channel: petition, people_at_least: 5}", "when: {channel: petition, people_at_least: 3}"),
        encoding="utf-8")
    case = CaseFacts("k1", "petition", township=TOWNSHIP, people_count=4)
    assert decide(case, kind(), DIRECTORY).level == "township"
    assert decide(case, kind(), DIRECTORY, rules=Rules.load(folder)).level == "county"


def test_every_level_and_mechanism_is_reachable_with_reasons():
    cases = [
        (CaseFacts("v1", "grid", grid=a_grid().code), kind()),
        (CaseFacts("v2", "hotline", township=TOWNSHIP, village=a_village().code), kind()),
        (CaseFacts("v3", "walkin", township=TOWNSHIP), kind()),
        (CaseFacts("v4", "petition", township=TOWNSHIP, people_count=20), kind("征地拆迁", people=20)),
        (CaseFacts("v5", "hotline", township=TOWNSHIP), kind("医疗纠纷")),
    ]
    decisions = [decide(case, classification, DIRECTORY) for case, classification in cases]
    decisions.append(decide(cases[1][0], kind(), DIRECTORY, at_level="work_area"))
    assert {d.level for d in decisions} == set(LEVELS)
    assert {d.mechanism for d in decisions} == {"supermarket", "specialised", "joint", "chain"}
    assert all(d.reasons and any("规则" in r for r in d.reasons) for d in decisions)
