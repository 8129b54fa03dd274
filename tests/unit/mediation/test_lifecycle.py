"""The lifecycle table: every allowed transition, every refusal, the rules of each action, the whole loop."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from services.mediation import lifecycle as L
from services.mediation.deadlines import SHANGHAI
from services.mediation.lifecycle import Actor, CaseState, Forbidden, InvalidInput, InvalidTransition, apply

CASE_NO = "371324-20260302-000101"
TOWNSHIP = "卞庄街道"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)   # Monday 10:00 in Lanling

ACTORS = {
    "system": Actor("system"),
    "mediator": Actor("mediator", "m1"),
    "grid_worker": Actor("grid_worker", "m1"),
    "township_head": Actor("township_head", "h1", township=TOWNSHIP),
    "county_supervisor": Actor("county_supervisor", "s1"),
    "citizen": Actor("citizen", case_no=CASE_NO),
    "receptionist": Actor("receptionist", "r1"),
}

HELD = {"assigned", "accepted", "in_mediation", "resolved", "closed", "referred", "resolved_on_site", "reopened"}
SIGNED = HELD - {"assigned"}
MEDIATED = {"in_mediation", "resolved", "closed", "referred", "reopened"}


def local(y, m, d, hh=17, mm=30):
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).astimezone(timezone.utc)


def case_in(status: str, level: str = "township", **changes) -> CaseState:
    """A plausible case in `status`, held by m1 in 卞庄街道, deadlines in the future."""
    fields = dict(case_no=CASE_NO, status=status, channel="app", township=TOWNSHIP, received_at=NOW - timedelta(days=2))
    if status != "received":
        fields.update(level=level, mechanism="chain", unit="unit-bz", dispute_type="邻里纠纷")
    if status in HELD:
        fields.update(holders=("m1",), assigned_at=NOW - timedelta(days=1), sign_off_due=NOW + timedelta(hours=8),
                      handling_started_at=NOW - timedelta(days=1), handling_due=NOW + timedelta(days=5))
    if status in SIGNED:
        fields.update(accepted_at=NOW - timedelta(hours=20))
    if status in MEDIATED:
        fields.update(sessions=1)
    if status in ("resolved", "closed"):
        fields.update(outcome="resolved", finished_at=NOW - timedelta(hours=1))
    if status == "referred":
        fields.update(outcome="referred", referral_target="litigation", finished_at=NOW - timedelta(hours=1))
    if status == "resolved_on_site":
        fields.update(level="grid", outcome="resolved_on_site", finished_at=NOW - timedelta(hours=1))
    if status in ("returned", "escalated"):
        fields.update(outcome=status, finished_at=NOW - timedelta(hours=1), returned_by=("m0",))
    fields.update(changes)
    return CaseState(**fields)


PAYLOADS = {
    "route": {"level": "township", "mechanism": "chain", "unit": "unit-bz"},
    "assign": {"holders": ["m1"]},
    "reassign": {"holders": ["m2"], "reason": "原承办人回避"},
    "choose": {"holders": ["m3"], "level": "township", "mechanism": "supermarket"},
    "merge_source": {"source": "hotline:WO-1"},
    "unmerge_source": {"source": "hotline:WO-0"},
    "mark_major": {"reason": "涉及群体"},
    "accept": {},
    "return": {"reason": "不属于本辖区"},
    "record_session": {"mode": "back_to_back", "attendees": ["张三", "李四"], "notes": "分别听取双方意见"},
    "request_psych": {"need": "申请人情绪激动"},
    "request_extension": {"reason": "需等待鉴定结论"},
    "approve_extension": {},
    "reject_extension": {"reason": "理由不充分"},
    "resolve": {"terms": ["李四于3月10日前拆除越界围墙"], "facts": "宅基地界址争议"},
    "resolve_on_site": {"summary": "网格员现场调解, 双方和解"},
    "fail": {"reason": "双方分歧大"},
    "escalate": {"reason": "超出本级能力"},
    "refer": {"target": "litigation", "reason": "调解不成", "mediation_declined": "被申请人拒绝调解"},
    "evaluate": {"rating": "满意", "comment": "很好"},
    "redo": {"reason": "复核认为诉求未解决"},
    "dismiss_rating": {"reason": "协议已履行, 不满意理由与本案无关"},
    "close": {"reason": "评价期满未评价"},
    "reopen": {"reason": "协议未履行"},
}


def prepared(action: str, status: str, role: str, target: str) -> tuple[CaseState, dict]:
    """A case in `status` that satisfies the action's own rules, and a valid payload."""
    level = "grid" if role == "grid_worker" or action == "resolve_on_site" else "township"
    changes: dict = {}
    if action in ("approve_extension", "reject_extension"):
        changes["pending_extension"] = L.ExtensionRequest("mediator:m1", NOW - timedelta(hours=1), "需鉴定")
    if action in ("redo", "dismiss_rating"):
        changes.update(review_open=True, rating="不满意")
    if action == "unmerge_source":
        changes["merged_sources"] = ("hotline:WO-0",)
    if action == "resolve_on_site" and status == "received":
        changes["channel"] = "grid"
    payload = dict(PAYLOADS[action])
    if action == "evaluate":
        payload["rating"] = "满意" if target == "closed" else "不满意"
    return case_in(status, level=level, **changes), payload


ALLOWED = [(source, action, target, role)
           for source, action, target, roles in L.transitions() for role in sorted(roles)]


@pytest.mark.parametrize("source, action, target, role", ALLOWED,
                         ids=[f"{s}-{a}-{t}-{r}" for s, a, t, r in ALLOWED])
def test_every_allowed_transition(source, action, target, role):
    case, payload = prepared(action, source, role, target)
    transition = apply(case, action, ACTORS[role], payload, NOW)
    assert transition.case.status == target
    assert (transition.audit.from_status, transition.audit.to_status) == (source, target)
    assert transition.audit.action == action and transition.audit.at == NOW
    assert transition.audit.actor == ACTORS[role].label()


def test_the_table_covers_every_status_and_staff_action():
    assert {s for s, *_ in L.transitions()} | {t for _, _, t, _ in L.transitions()} == set(L.STATUSES)
    issue_actions = {"accept", "record_session", "resolve", "fail", "escalate", "refer", "return",
                     "request_extension", "approve_extension", "reassign", "reopen"}
    assert issue_actions <= set(L.STAFF_ACTIONS)
    assert not {"route", "assign", "close", "evaluate", "merge_source"} & set(L.STAFF_ACTIONS)
    assert not any(source in ("resolved_on_site",) for source, *_ in L.transitions())  # terminal


def _permitted_role(action: str) -> str:
    roles = set().union(*(rule.roles for rule in L.TRANSITIONS if rule.action == action))
    return next(role for role in ("county_supervisor", "system", "citizen") if role in roles)


FORBIDDEN_STATES = [(action, status) for action in L.ACTIONS for status in L.STATUSES
                    if not any(rule.action == action and status in rule.sources for rule in L.TRANSITIONS)]


@pytest.mark.parametrize("action, status", FORBIDDEN_STATES, ids=[f"{a}-from-{s}" for a, s in FORBIDDEN_STATES])
def test_every_action_is_refused_in_every_other_state(action, status):
    role = _permitted_role(action)
    case, payload = prepared(action, status, role, "closed")
    with pytest.raises(InvalidTransition):
        apply(case, action, ACTORS[role], payload, NOW)


FORBIDDEN_ROLES = [(action, role) for action in L.ACTIONS for role in L.ROLES
                   if not any(rule.action == action and role in rule.roles for rule in L.TRANSITIONS)]


@pytest.mark.parametrize("action, role", FORBIDDEN_ROLES, ids=[f"{a}-by-{r}" for a, r in FORBIDDEN_ROLES])
def test_every_role_is_refused_the_actions_it_does_not_have(action, role):
    rule = next(rule for rule in L.TRANSITIONS if rule.action == action)
    case, payload = prepared(action, rule.sources[0], role, rule.targets[0])
    with pytest.raises(Forbidden):
        apply(case, action, ACTORS[role], payload, NOW)


def test_the_receptionist_has_no_mediation_actions():
    assert all((action, "receptionist") in FORBIDDEN_ROLES for action in L.ACTIONS)


# --- scope -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("actor, case", [
    (Actor("mediator", "m9"), case_in("assigned")),                                   # not the holder
    (Actor("grid_worker", "m1"), case_in("assigned", level="village")),               # not a grid case
    (Actor("township_head", "h2", township="向城镇"), case_in("assigned")),            # another township
    (Actor("township_head", "h1", township=TOWNSHIP), case_in("assigned", level="county")),  # county case
])
def test_staff_outside_their_scope_are_forbidden(actor, case):
    with pytest.raises(Forbidden) as refusal:
        apply(case, "accept", actor, {}, NOW)
    assert refusal.value.http_status == 403


def test_a_citizen_rates_only_the_case_of_their_link():
    with pytest.raises(Forbidden, match="评价链接"):
        apply(case_in("resolved"), "evaluate", Actor("citizen", case_no="371324-20260302-000999"),
              {"rating": "满意"}, NOW)


def test_a_role_allowed_elsewhere_is_still_refused_from_a_system_only_state():
    case = case_in("received", channel="grid")
    with pytest.raises(Forbidden):
        apply(case, "resolve_on_site", ACTORS["county_supervisor"], {"summary": "x"}, NOW)


def test_refusal_kinds_map_to_http():
    assert (Forbidden("x").http_status, InvalidTransition("x").http_status, InvalidInput("x").http_status) == (
        403, 409, 400)
    assert issubclass(Forbidden, L.Refused) and issubclass(InvalidTransition, L.Refused)


def test_allowed_actions_for_the_console():
    assert L.allowed_actions(case_in("assigned"), ACTORS["mediator"]) == [
        "accept", "return", "request_psych", "escalate"]
    assert L.allowed_actions(case_in("assigned"), Actor("mediator", "m9")) == []
    assert L.allowed_actions(case_in("resolved"), ACTORS["citizen"]) == ["evaluate"]


# --- assignment and deadlines ---------------------------------------------------------------------------

def routed(channel="app", level="township", **changes) -> CaseState:
    case = CaseState(CASE_NO, channel=channel, township=TOWNSHIP, received_at=NOW, **changes)
    return apply(case, "route", ACTORS["system"], {"level": level, "mechanism": "chain", "unit": "unit-bz"}, NOW).case


def test_assignment_sets_deadlines_in_working_days():
    transition = apply(routed(), "assign", ACTORS["system"], {"holders": ["m1"]}, NOW)
    case = transition.case
    assert case.sign_off_due == local(2026, 3, 3)        # next working day 17:30
    assert case.handling_due == local(2026, 3, 11)       # 7 working days
    [event] = transition.events
    assert event.name == "case_assigned"
    assert event.payload["holders"] == ["m1"] and event.payload["handling_due"] == local(2026, 3, 11)
    assert event.payload["limits"]["basis"] == ["base", "township"]


def test_route_with_psych_need_requests_a_counsellor():
    case = CaseState(CASE_NO, channel="app", township=TOWNSHIP)
    transition = apply(case, "route", ACTORS["system"],
                       {"level": "county", "mechanism": "supermarket", "psych_needed": True}, NOW)
    assert [e.name for e in transition.events] == ["psych_requested"]


def test_route_refuses_unknown_levels():
    with pytest.raises(InvalidInput) as refusal:
        apply(CaseState(CASE_NO), "route", ACTORS["system"], {"level": "province", "mechanism": "chain"}, NOW)
    assert "level" in refusal.value.fields


def test_late_accept_is_allowed_and_recorded_as_late():
    case = apply(routed(), "assign", ACTORS["system"], {"holders": ["m1"]}, NOW).case
    on_time = apply(case, "accept", ACTORS["mediator"], {}, local(2026, 3, 3, 17, 0))
    late = apply(case, "accept", ACTORS["mediator"], {}, local(2026, 3, 4, 9, 0))
    assert not on_time.case.accepted_late and on_time.events[0].payload["late"] is False
    assert late.case.accepted_late and late.audit.detail["late"] is True
    assert late.events[0].name == "case_accepted" and late.events[0].payload["late"] is True


def test_reassign_restarts_the_clock_except_for_statutory_channels():
    later = NOW + timedelta(days=10)
    township = apply(routed(), "assign", ACTORS["system"], {"holders": ["m1"]}, NOW).case
    moved = apply(township, "reassign", ACTORS["county_supervisor"], {"holders": ["m2"], "reason": "回避"}, later).case
    # Thu Mar 12 + 7 working days: 13, 16, 17, 18, 19, 20, 23.
    assert moved.handling_due == local(2026, 3, 23) and moved.holders == ("m2",)

    petition = apply(routed(channel="petition"), "assign", ACTORS["system"], {"holders": ["m1"]}, NOW).case
    # Mar 2 + 60 calendar days = May 1, Labour Day (May 1-5 off in 2026): the period ends May 6.
    assert petition.handling_due == local(2026, 5, 6)
    moved = apply(petition, "reassign", ACTORS["township_head"], {"holders": ["m2"], "reason": "回避"}, later).case
    assert moved.handling_due == local(2026, 5, 6)
    assert moved.sign_off_due == local(2026, 3, 13)      # a fresh sign-off for the new holder


def test_reassign_to_the_same_holder_is_refused():
    with pytest.raises(InvalidTransition):
        apply(case_in("accepted"), "reassign", ACTORS["county_supervisor"], {"holders": ["m1"], "reason": "x"}, NOW)


# --- sessions, endings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", L.SESSION_MODES)
def test_sessions_in_each_mode(mode):
    payload = {"mode": mode, "attendees": ["王小明", "李四"], "notes": "双方陈述", "held_at": NOW - timedelta(hours=1)}
    transition = apply(case_in("accepted"), "record_session", ACTORS["mediator"], payload, NOW)
    assert transition.case.sessions == 1
    assert transition.record == L.Session(CASE_NO, mode, ("王小明", "李四"), "双方陈述", NOW - timedelta(hours=1),
                                          "mediator:m1")
    assert transition.audit.detail == {"mode": mode, "attendees": 2, "held_at": NOW - timedelta(hours=1)}


@pytest.mark.parametrize("payload, field", [
    ({"mode": "phone", "attendees": ["a"], "notes": "n"}, "mode"),
    ({"mode": "online", "attendees": [], "notes": "n"}, "attendees"),
    ({"mode": "online", "attendees": "张三", "notes": "n"}, "attendees"),
    ({"mode": "online", "attendees": ["a"]}, "notes"),
    ({"mode": "online", "attendees": ["a"], "notes": "n", "held_at": NOW + timedelta(hours=1)}, "held_at"),
])
def test_session_input_is_checked(payload, field):
    with pytest.raises(InvalidInput) as refusal:
        apply(case_in("in_mediation"), "record_session", ACTORS["mediator"], payload, NOW)
    assert field in refusal.value.fields


def test_resolve_needs_terms_and_produces_an_agreement():
    with pytest.raises(InvalidInput):
        apply(case_in("in_mediation"), "resolve", ACTORS["mediator"], {"terms": []}, NOW)
    transition = apply(case_in("in_mediation"), "resolve", ACTORS["mediator"],
                       {"terms": ["赔偿500元"], "judicial_confirmation": True}, NOW)
    assert transition.record.terms == ("赔偿500元",) and transition.record.judicial_confirmation
    assert [e.name for e in transition.events] == ["case_resolved"]


def test_refer_requires_mediation_first():
    no_session = case_in("accepted")
    payload = {"target": "arbitration", "reason": "劳动仲裁"}
    with pytest.raises(InvalidTransition, match="调解优先"):
        apply(no_session, "refer", ACTORS["mediator"], payload, NOW)
    declined = apply(no_session, "refer", ACTORS["mediator"], {**payload, "mediation_declined": "用人单位拒绝调解"}, NOW)
    assert declined.audit.detail["mediation_first"] == {"declined": "用人单位拒绝调解"}
    tried = apply(case_in("in_mediation", sessions=2), "refer", ACTORS["mediator"], payload, NOW)
    assert tried.audit.detail == {"target": "arbitration", "mediation_first": {"sessions": 2}}
    assert tried.events[0].name == "case_closed" and tried.events[0].payload["target"] == "arbitration"


def test_refer_targets_are_checked():
    with pytest.raises(InvalidInput):
        apply(case_in("in_mediation"), "refer", ACTORS["mediator"], {"target": "police", "reason": "x"}, NOW)


def test_return_needs_a_reason_and_routing_must_avoid_everyone_who_returned_it():
    with pytest.raises(InvalidInput):
        apply(case_in("assigned"), "return", ACTORS["mediator"], {}, NOW)
    transition = apply(case_in("assigned", returned_by=("m0",)), "return", ACTORS["mediator"],
                       {"reason": "不属于本辖区"}, NOW)
    assert transition.case.holders == () and transition.case.returned_by == ("m0", "m1")
    assert transition.events[0].name == "assignment_returned"
    assert transition.events[0].payload["exclude_holders"] == ["m0", "m1"]


def test_fail_escalates_but_not_from_the_county():
    transition = apply(case_in("in_mediation"), "fail", ACTORS["mediator"], {"reason": "分歧大"}, NOW)
    assert transition.events[0].name == "escalation_requested"
    assert transition.events[0].payload["failed"] is True and transition.events[0].payload["from_level"] == "township"
    with pytest.raises(InvalidTransition):
        apply(case_in("in_mediation", level="county"), "fail", ACTORS["mediator"], {"reason": "x"}, NOW)


def test_grid_cases_are_resolved_on_site_or_reported_up():
    grid = case_in("assigned", level="grid")
    settled = apply(grid, "resolve_on_site", ACTORS["grid_worker"], {"summary": "现场和解"}, NOW)
    assert settled.case.status == "resolved_on_site"
    assert [e.name for e in settled.events] == ["case_resolved", "case_closed"]
    assert L.allowed_actions(settled.case, ACTORS["county_supervisor"]) == []        # terminal
    reported = apply(grid, "escalate", ACTORS["grid_worker"], {"reason": "不能立即调解"}, NOW)
    assert reported.case.status == "escalated"
    with pytest.raises(InvalidTransition, match="网格"):
        apply(case_in("accepted"), "resolve_on_site", ACTORS["township_head"], {"summary": "x"}, NOW)
    with pytest.raises(Forbidden):
        apply(case_in("accepted"), "resolve_on_site", ACTORS["mediator"], {"summary": "x"}, NOW)


# --- extensions -----------------------------------------------------------------------------------------------

def assigned_township_case() -> CaseState:
    case = apply(routed(), "assign", ACTORS["system"], {"holders": ["m1"]}, NOW).case
    return apply(case, "accept", ACTORS["mediator"], {}, NOW + timedelta(hours=1)).case


def test_extension_requested_before_the_deadline_and_approved_by_the_township_head():
    case = assigned_township_case()
    requested = apply(case, "request_extension", ACTORS["mediator"], {"reason": "等待鉴定"}, NOW + timedelta(days=2))
    assert requested.events[0].name == "extension_requested"
    assert requested.events[0].payload["approver_role"] == "township_head"
    approved = apply(requested.case, "approve_extension", ACTORS["township_head"], {}, NOW + timedelta(days=3))
    assert approved.case.handling_due == local(2026, 3, 20)   # 7 more working days after Mar 11
    assert approved.case.extensions_used == 1 and approved.case.pending_extension is None
    with pytest.raises(InvalidTransition, match="延期次数"):
        apply(approved.case, "request_extension", ACTORS["mediator"], {"reason": "again"}, NOW + timedelta(days=4))


def test_extension_refusals():
    case = assigned_township_case()
    with pytest.raises(InvalidTransition, match="届满前"):
        apply(case, "request_extension", ACTORS["mediator"], {"reason": "x"}, local(2026, 3, 11, 18))
    pending = apply(case, "request_extension", ACTORS["mediator"], {"reason": "x"}, NOW + timedelta(days=1)).case
    with pytest.raises(InvalidTransition, match="待审批"):
        apply(pending, "request_extension", ACTORS["mediator"], {"reason": "y"}, NOW + timedelta(days=1))
    with pytest.raises(InvalidTransition, match="没有待审批"):
        apply(case, "approve_extension", ACTORS["township_head"], {}, NOW)
    self_request = apply(case, "request_extension", ACTORS["township_head"], {"reason": "x"}, NOW).case
    with pytest.raises(Forbidden, match="本人"):
        apply(self_request, "approve_extension", ACTORS["township_head"], {}, NOW)
    rejected = apply(pending, "reject_extension", ACTORS["township_head"], {"reason": "理由不足"}, NOW)
    assert rejected.case.pending_extension is None and rejected.case.handling_due == case.handling_due
    assert rejected.events[0].payload["approved"] is False


def test_county_extensions_need_the_county_supervisor():
    case = case_in("in_mediation", level="county",
                   pending_extension=L.ExtensionRequest("mediator:m1", NOW, "x"))
    with pytest.raises(Forbidden):
        apply(case, "approve_extension", ACTORS["township_head"], {}, NOW)
    approved = apply(case, "approve_extension", ACTORS["county_supervisor"], {}, NOW)
    assert approved.case.extensions_used == 1


def test_grid_cases_cannot_be_extended():
    with pytest.raises(InvalidTransition):
        apply(case_in("accepted", level="grid"), "request_extension", ACTORS["township_head"], {"reason": "x"}, NOW)


# --- evaluation and review -------------------------------------------------------------------------------------

def test_dissatisfaction_opens_a_review_that_can_dismiss_the_rating():
    rated = apply(case_in("resolved"), "evaluate", ACTORS["citizen"], {"rating": "不满意", "comment": "没解决"}, NOW)
    assert rated.case.status == "resolved" and rated.case.review_open
    assert rated.events[0].payload["review"] is True
    with pytest.raises(InvalidTransition, match="已评价"):
        apply(rated.case, "evaluate", ACTORS["citizen"], {"rating": "满意"}, NOW)
    with pytest.raises(InvalidTransition, match="复核中"):
        apply(rated.case, "close", ACTORS["system"], {"reason": "期满"}, NOW)
    dismissed = apply(rated.case, "dismiss_rating", ACTORS["township_head"], {"reason": "协议已履行"}, NOW)
    assert dismissed.case.status == "closed" and dismissed.audit.reason == "协议已履行"
    assert dismissed.events[0].payload["review"] == "rating_unreasonable"


def test_redo_and_dismiss_need_an_open_review():
    with pytest.raises(InvalidTransition):
        apply(case_in("resolved"), "redo", ACTORS["county_supervisor"], {"reason": "x"}, NOW)
    with pytest.raises(InvalidTransition):
        apply(case_in("resolved"), "dismiss_rating", ACTORS["county_supervisor"], {"reason": "x"}, NOW)


def test_ratings_are_checked():
    with pytest.raises(InvalidInput):
        apply(case_in("resolved"), "evaluate", ACTORS["citizen"], {"rating": "一般"}, NOW)


def test_reopen_then_assign_again():
    closed = case_in("closed", handling_due=NOW - timedelta(days=3))
    reopened = apply(closed, "reopen", ACTORS["county_supervisor"], {"reason": "协议未履行"}, NOW).case
    assert reopened.status == "reopened" and reopened.outcome is None
    assert reopened.timer_view().deadlines == ()       # the finished round's deadlines cannot go overdue
    assigned = apply(reopened, "assign", ACTORS["system"], {"holders": ["m1"]}, NOW).case
    assert assigned.status == "assigned" and assigned.accepted_at is None
    assert assigned.handling_due == local(2026, 3, 11)


def test_next_deadline_is_the_one_the_holder_works_against():
    assert case_in("assigned").next_deadline() == NOW + timedelta(hours=8)
    assert case_in("in_mediation").next_deadline() == NOW + timedelta(days=5)
    assert case_in("resolved").next_deadline() is None


# --- merged sources, major cases, audit ----------------------------------------------------------------------------

def test_merged_sources_join_and_leave_the_case():
    case = apply(case_in("in_mediation"), "merge_source", ACTORS["system"], {"source": "hotline:WO-9"}, NOW).case
    assert case.merged_sources == ("hotline:WO-9",) and case.status == "in_mediation"
    with pytest.raises(InvalidTransition):
        apply(case, "merge_source", ACTORS["system"], {"source": "hotline:WO-9"}, NOW)
    case = apply(case, "unmerge_source", ACTORS["system"], {"source": "hotline:WO-9"}, NOW).case
    assert case.merged_sources == ()
    with pytest.raises(InvalidTransition):
        apply(case_in("closed"), "merge_source", ACTORS["system"], {"source": "x"}, NOW)


def test_major_cases_feed_the_timer():
    case = apply(case_in("assigned"), "mark_major", ACTORS["system"], {"reason": "群体性"}, NOW).case
    assert case.major_since == NOW and case.timer_view().major_since == NOW
    with pytest.raises(InvalidTransition):
        apply(case, "mark_major", ACTORS["county_supervisor"], {"reason": "again"}, NOW)


def test_timer_view_marks_met_deadlines():
    view = case_in("accepted").timer_view()
    sign_off, handling = view.deadlines
    assert (sign_off.kind, sign_off.met_at) == ("sign_off", NOW - timedelta(hours=20))
    assert (handling.kind, handling.met_at) == ("handling", None)
    assert view.mediator == "m1" and view.township == TOWNSHIP


def test_audit_and_events_mask_personal_data_in_free_text():
    transition = apply(case_in("assigned"), "return", ACTORS["mediator"],
                       {"reason": "当事人13812345678称不在本辖区"}, NOW)
    assert transition.audit.reason == "当事人138****5678称不在本辖区"
    assert "13812345678" not in repr(transition.events)


def test_unknown_actions_and_missing_fields_are_input_errors():
    with pytest.raises(InvalidInput):
        apply(case_in("assigned"), "teleport", ACTORS["system"], {}, NOW)
    with pytest.raises(InvalidInput) as refusal:
        apply(case_in("assigned"), "escalate", ACTORS["mediator"], {}, NOW)
    assert refusal.value.fields == {"reason": ["required"]}


# --- the whole loop --------------------------------------------------------------------------------------------------

def test_the_closed_loop_with_a_redo():
    """submit, assign, accept, session, resolve, feedback, 不满意, redo, resolve, 满意, closed."""
    system, mediator, head, citizen = ACTORS["system"], ACTORS["mediator"], ACTORS["township_head"], ACTORS["citizen"]
    session = {"mode": "face_to_face", "attendees": ["王小明", "李四"], "notes": "现场调解"}
    steps = [
        ("route", system, {"level": "township", "mechanism": "chain"}, NOW),
        ("assign", system, {"holders": ["m1"]}, NOW),
        ("accept", mediator, {}, NOW + timedelta(hours=2)),
        ("record_session", mediator, session, NOW + timedelta(days=1)),
        ("resolve", mediator, {"terms": ["赔偿500元"]}, NOW + timedelta(days=2)),
        ("evaluate", citizen, {"rating": "不满意", "comment": "赔偿未到位"}, NOW + timedelta(days=3)),
        ("redo", head, {"reason": "复核: 赔偿未履行"}, NOW + timedelta(days=4)),
        ("record_session", mediator, session, NOW + timedelta(days=5)),
        ("resolve", mediator, {"terms": ["3日内付清500元"]}, NOW + timedelta(days=6)),
        ("evaluate", citizen, {"rating": "满意"}, NOW + timedelta(days=7)),
    ]
    case = CaseState(CASE_NO, channel="hotline", township=TOWNSHIP, received_at=NOW)
    statuses, events, audit = [], [], []
    for action, actor, payload, at in steps:
        transition = apply(case, action, actor, payload, at)
        case = transition.case
        statuses.append(case.status)
        events += [event.name for event in transition.events]
        audit.append((transition.audit.from_status, transition.audit.to_status))
    assert statuses == ["routed", "assigned", "accepted", "in_mediation", "resolved", "resolved", "in_mediation",
                        "in_mediation", "resolved", "closed"]
    assert events == ["case_assigned", "case_accepted", "case_resolved", "case_evaluated",
                      "case_assigned", "case_resolved", "case_evaluated", "case_closed"]
    assert [a for a, _ in audit][1:] == [b for _, b in audit][:-1]     # an unbroken history
    assert case.redo_count == 1 and case.rating == "满意" and case.sessions == 2
    # The redo got a fresh handling period: 5 working days (hotline) from Mar 6 10:00.
    assert case.handling_started_at == NOW + timedelta(days=4)
    assert case.handling_due == local(2026, 3, 13)


def test_states_are_immutable_values():
    case = case_in("assigned")
    apply(case, "accept", ACTORS["mediator"], {}, NOW)
    assert case.status == "assigned"
    assert replace(case) == case
