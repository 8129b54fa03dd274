"""Mediation's use cases on a real database: events in, staff actions, events out (contract-checked)."""
from __future__ import annotations

import pytest

from services.contracts.errors import Conflict, Forbidden, Invalid, NotFound
from services.mediation import handlers
from tests.unit.mediation.conftest import HEAD, MEDIATOR, SUPERVISOR, TOWNSHIP, later

CASE = "371324-20260302-000001"


def test_the_whole_loop_with_redo(desk):
    desk.received(CASE)
    desk.routed(CASE)
    view = desk.view(CASE)
    assert view["status"] == "assigned" and view["holders"] == ["M-005-1"]
    assert [p["role"] for p in view["parties"]] == ["respondent", "applicant"]
    assert view["parties"][1]["name"] == "王**" and view["parties"][1]["phone"] == "138****5678"
    assigned = desk.events("case_assigned")[0].data
    assert assigned["assignees"][0]["phone"] == "13800000005"          # contacts for notify
    assert [s["id"] for s in assigned["supervisors"]] == ["TH-005", "CS-1"]

    desk.act(CASE, "accept", MEDIATOR)
    desk.act(CASE, "record_session", MEDIATOR, mode="back_to_back", attendees=["王秀英", "李大山"],
             notes="双方同意各让一步, 王秀英电话13812345678")
    later(desk, hours=2)
    desk.act(CASE, "resolve", MEDIATOR, terms=["李大山拆除越界围墙"], facts="李大山盖房越界半米")
    resolved = desk.events("case_resolved")[0].data
    token, url = resolved["rating_token"], resolved["rating_url"]
    assert 8 <= len(token) <= 10 and url.endswith(f"/r/{token}")
    assert not desk.events("evaluation_requested")                       # not with case_resolved: one SMS

    with desk.db.transaction() as uow:
        answer = handlers.evaluate(uow, CASE, token, "不满意", "没拆")
    assert answer == {"case_no": CASE, "status": "resolved", "rating": "不满意", "review": True}
    with pytest.raises(Conflict):                                        # the link is used
        with desk.db.transaction() as uow:
            handlers.evaluate(uow, CASE, token, "满意", None)
    with pytest.raises(Forbidden):                                       # a mediator cannot redo
        desk.act(CASE, "redo", MEDIATOR, reason="复核")
    desk.act(CASE, "redo", HEAD, reason="复核认为未履行")
    assert desk.view(CASE)["status"] == "in_mediation"
    desk.act(CASE, "record_session", MEDIATOR, mode="face_to_face", attendees=["王秀英"], notes="现场督促")
    desk.act(CASE, "resolve", MEDIATOR, terms=["三日内拆除"], judicial_confirmation=True)
    second = desk.events("case_resolved")[1].data
    assert second["rating_token"] != token and second["redo_count"] == 1
    with desk.db.transaction() as uow:
        handlers.evaluate(uow, CASE, second["rating_token"], "满意", "谢谢")
    view = desk.view(CASE, private=True)
    assert view["status"] == "closed" and view["rating"] == "满意"
    assert [e["rating"] for e in view["evaluations"]] == ["不满意", "满意"]
    assert [a["judicial_confirmation"] for a in view["agreements"]] == [False, True]
    assert "13812345678" not in str(view) and "王秀英" not in str(view)
    assert view["sessions"][0]["attendees"] == ["王**", "李**"]
    closed = desk.events("case_closed")
    assert len(closed) == 1 and closed[0].data["outcome"] == "resolved"
    actions = [h["event"] for h in view["history"] if h["from"]]
    assert actions == ["route", "assign", "accept", "record_session", "resolve", "evaluate", "redo",
                       "record_session", "resolve", "evaluate"]
    assert all(h["actor"] for h in view["history"])


def test_refusals_are_403_409_400_and_change_nothing(desk):
    desk.received(CASE)
    desk.routed(CASE)
    other = {"role": "mediator", "id": "M-999"}
    with pytest.raises(Forbidden):
        desk.act(CASE, "accept", other)
    with pytest.raises(Forbidden):
        desk.act(CASE, "accept", {"role": "township_head", "id": "TH-1", "township": "371324-001"})
    with pytest.raises(Conflict):
        desk.act(CASE, "resolve", MEDIATOR, terms=["x"])
    with pytest.raises(Invalid) as invalid:
        desk.act(CASE, "return", MEDIATOR)
    assert invalid.value.fields == {"reason": ["required"]}
    with pytest.raises(NotFound):
        desk.act(CASE, "fly", MEDIATOR)
    with pytest.raises(NotFound):
        desk.act("371324-20260302-999999", "accept", MEDIATOR)
    assert desk.view(CASE)["status"] == "assigned"
    assert [h["event"] for h in desk.view(CASE)["history"]] == ["case_received", "case_routed", "route", "assign"]


def test_a_unit_liaison_acts_on_a_case_held_by_its_unit(desk):
    desk.received(CASE)
    unit = {"id": "U-MEDICAL-COMMITTEE", "name": "县医疗纠纷人民调解委员会", "role": "unit"}
    desk.routed(CASE, mediators=(), unit=unit, mechanism="specialised", level="county")
    assert desk.view(CASE)["holders"] == ["U-MEDICAL-COMMITTEE"]
    desk.act(CASE, "accept", {"role": "mediator", "id": "U-MEDICAL-COMMITTEE"})
    assert desk.view(CASE)["status"] == "accepted"
    # county cases are not the township head's
    with pytest.raises(Forbidden):
        desk.act(CASE, "request_extension", HEAD, reason="x")


def test_return_goes_to_routing_and_the_next_routing_reassigns(desk):
    desk.received(CASE)
    desk.routed(CASE)
    desk.act(CASE, "return", MEDIATOR, reason="与当事人有亲属关系, 需回避")
    returned = desk.events("assignment_returned")[0].data
    assert returned["exclude_mediators"] == ["M-005-1"] and returned["attempt"] == 1
    assert returned["returned_by"] == "mediator:M-005-1"
    desk.routed(CASE, attempt=2, mediators=("M-005-2",))
    desk.routed(CASE, attempt=2, mediators=("M-005-3",))                # stale or repeated: ignored
    view = desk.view(CASE)
    assert view["status"] == "assigned" and view["holders"] == ["M-005-2"]
    assert len(desk.events("case_assigned")) == 2


def test_the_parties_choice_after_assignment_reassigns_to_their_mediators(desk):
    desk.received(CASE)
    desk.routed(CASE)
    desk.routed(CASE, attempt=2, mediators=("MC-01-1", "MC-01-2"), level="county", mechanism="supermarket",
                trigger="party_choice")
    view = desk.view(CASE)
    assert view["status"] == "assigned" and view["holders"] == ["MC-01-1", "MC-01-2"]
    assert view["level"] == "county" and view["mechanism"] == "supermarket"
    assert desk.events("case_assigned")[-1].data["assignees"][0]["id"] == "MC-01-1"


def test_escalation_failed_at_township_asks_routing_one_level_up(desk):
    desk.received(CASE)
    desk.routed(CASE)
    desk.act(CASE, "accept", MEDIATOR)
    desk.act(CASE, "record_session", MEDIATOR, mode="online", attendees=["王秀英"], notes="分歧大")
    desk.act(CASE, "fail", MEDIATOR, reason="双方分歧过大")
    escalation = desk.events("escalation_requested")[0].data
    assert escalation["from_level"] == "township" and escalation["failed"] is True
    assert escalation["exclude_mediators"] == ["M-005-1"]
    desk.routed(CASE, attempt=2, level="county", mediators=("MC-01-1",))
    assert desk.view(CASE)["level"] == "county" and desk.view(CASE)["status"] == "assigned"


def test_extension_is_approved_by_the_township_head_not_the_requester(desk):
    desk.received(CASE, channel="app")
    desk.routed(CASE)
    desk.act(CASE, "accept", MEDIATOR)
    before = desk.view(CASE)["deadlines"]["handling"]
    desk.act(CASE, "request_extension", MEDIATOR, reason="需等待鉴定")
    assert desk.events("extension_requested")[0].data["approver_role"] == "township_head"
    with pytest.raises(Forbidden):
        desk.act(CASE, "approve_extension", MEDIATOR)
    desk.act(CASE, "approve_extension", HEAD)
    after = desk.view(CASE)["deadlines"]["handling"]
    assert after > before and desk.events("extension_decided")[0].data["approved"] is True


def test_reassign_and_reopen_by_supervisors(desk):
    desk.received(CASE)
    desk.routed(CASE)
    desk.act(CASE, "reassign", SUPERVISOR, holders=["M-005-2"], reason="原调解员病假")
    assert desk.view(CASE)["holders"] == ["M-005-2"]
    desk.act(CASE, "accept", {"role": "mediator", "id": "M-005-2"})
    desk.act(CASE, "refer", {"role": "mediator", "id": "M-005-2"}, target="litigation", reason="拒绝调解",
             mediation_declined="被申请人明确拒绝调解")
    assert desk.events("case_closed")[0].data["referral_target"] == "litigation"
    desk.act(CASE, "reopen", HEAD, reason="当事人同意回到调解")
    view = desk.view(CASE)
    assert view["status"] == "assigned" and view["holders"] == ["M-005-2"]


def test_merge_unmerge_urgent_and_psych_events_enter_the_timeline(desk):
    desk.received(CASE)
    desk.routed(CASE)
    source = {"channel": "app", "reference": "app-77", "received_at": desk.clock.now(),
              "complainant": {"name": "赵四", "phone": "13611112222"}}
    desk.event("case_merged", {"case_no": CASE, "source": source, "score": 0.93})
    assert len(desk.view(CASE)["parties"]) == 3
    desk.event("case_unmerged", {"case_no": CASE, "reference": "app-77", "channel": "app",
                                 "new_case_no": "371324-20260302-000002", "reason": "不是同一件事"})
    assert len(desk.view(CASE)["parties"]) == 2
    desk.event("case_urgent", {"case_no": CASE, "signals": ["扬言轻生"], "detected_at": desk.clock.now()})
    view = desk.view(CASE)
    assert view["major"] and view["supervisions"][0]["reason"] == "major"
    assert desk.events("supervision_opened")[0].data["reason"] == "major"
    desk.event("counsellor_assigned", {"case_no": CASE, "offer_id": "o1",
                                       "counsellor": {"id": "PC-1", "name": "心理咨询师"}}, producer="psych")
    desk.event("psych_session_recorded", {"case_no": CASE, "counsellor_id": "PC-1", "kind": "first",
                                          "at": desk.clock.now()}, producer="psych")
    events = [h["event"] for h in desk.view(CASE)["history"]]
    assert {"case_merged", "merge_source", "case_unmerged", "unmerge_source", "case_urgent", "mark_major",
            "supervision_opened", "counsellor_assigned", "psych_session_recorded"} <= set(events)
    assert desk.view(CASE)["counsellor"]["id"] == "PC-1"


def test_events_that_arrive_before_the_case_wait_for_it_and_apply_in_order(desk):
    early = "371324-20260302-000404"
    desk.routed(early)
    desk.event("notification_sent", {"case_no": early, "delivery_id": "d", "event_type": "case_received",
                                     "audience": "citizen", "recipient": "r", "channel": "sms", "attempts": 1},
               producer="notify")
    with pytest.raises(NotFound):
        desk.view(early)
    desk.received(early)
    view = desk.view(early)
    assert view["status"] == "assigned" and view["holders"] == ["M-005-1"]
    events = [h["event"] for h in view["history"]]
    assert events.index("case_received") < events.index("case_routed") < events.index("notification_sent")
    assert len(desk.events("case_assigned")) == 1
    desk.received(early)                                         # a redelivered case_received changes nothing
    assert len(desk.events("case_assigned")) == 1


def test_a_grid_report_settled_on_site_is_closed_at_once(desk):
    desk.received(CASE, channel="grid", resolved_on_site=True)
    assert desk.view(CASE)["status"] == "resolved_on_site"
    assert [e.type for e in desk.events()] == ["case_resolved", "case_closed"]
    assert desk.events("case_resolved")[0].data.get("rating_url") is None


def test_worklists_show_each_role_what_it_may_see(desk):
    desk.received(CASE)
    desk.routed(CASE)
    desk.received("371324-20260302-000002", township="371324-001")
    desk.routed("371324-20260302-000002", mediators=("M-001-1",), township="371324-001")
    filters = {"page": 1, "per_page": 20}
    with desk.db.reading() as session:
        mine = handlers.worklist(session, MEDIATOR, filters)
        head = handlers.worklist(session, HEAD, filters)
        everyone = handlers.worklist(session, SUPERVISOR, filters)
        by_township = handlers.worklist(session, SUPERVISOR, {**filters, "township": "371324-001"})
        with pytest.raises(Forbidden):
            handlers.worklist(session, {"role": "receptionist", "id": "r"}, filters)
    assert [i["case_no"] for i in mine["items"]] == [CASE]
    assert [i["case_no"] for i in head["items"]] == [CASE]
    assert everyone["total"] == 2 and by_township["items"][0]["township"] == "371324-001"


def test_parties_are_edited_by_staff_in_scope(desk):
    desk.received(CASE)
    desk.routed(CASE)
    parties = desk.view(CASE)["parties"]
    with desk.db.transaction() as uow:
        result = handlers.edit_parties(uow, CASE, MEDIATOR, [
            {"id": parties[0]["id"], "address": "卞庄街道某村"},
            {"role": "third_party", "name": "村委会主任张三"}])
    assert [p["role"] for p in result] == ["respondent", "third_party"]
    assert result[0]["address"] == "(已隐藏)" and result[1]["name"].startswith("村*")
    with pytest.raises(Invalid):
        with desk.db.transaction() as uow:
            handlers.edit_parties(uow, CASE, MEDIATOR, [{"role": "witness", "name": "x"}])
    with pytest.raises(Forbidden):
        with desk.db.transaction() as uow:
            handlers.edit_parties(uow, CASE, {"role": "mediator", "id": "M-9"}, [])


def test_the_agreement_is_printable_and_masked_for_the_public(desk):
    desk.received(CASE)
    desk.routed(CASE)
    desk.act(CASE, "accept", MEDIATOR)
    desk.act(CASE, "record_session", MEDIATOR, mode="face_to_face", attendees=["王秀英"], notes="n")
    desk.act(CASE, "resolve", MEDIATOR, terms=["李大山于3月10日前拆除围墙"], facts="王秀英与李大山宅基地纠纷")
    with desk.db.reading() as session:
        public = handlers.agreement_html(session, CASE, True, {TOWNSHIP: "卞庄街道"})
        full = handlers.agreement_html(session, CASE, False, {TOWNSHIP: "卞庄街道"})
    assert "人民调解协议书" in public and "卞庄街道人民调解委员会" in public
    assert "王秀英" not in public and "李大山" not in public and "138****5678" in public
    assert "王秀英" in full and "13812345678" in full and "调解员1" in full
    desk.act(CASE, "mark_judicial_confirmation", MEDIATOR)
    assert desk.view(CASE)["agreements"][0]["judicial_confirmation"] is True


def test_a_holder_named_like_a_party_is_flagged_for_recusal(desk):
    desk.received(CASE, parties=[{"name": "调解员1", "role": "respondent"}])
    desk.routed(CASE, mediators=("M-005-1",))
    assert desk.view(CASE)["recusal_warnings"] == ["M-005-1"]
    desk.act(CASE, "return", MEDIATOR, reason="回避")
    desk.routed(CASE, attempt=2, mediators=("M-005-2",))
    assert desk.view(CASE)["recusal_warnings"] == []
