"""并单 in the service: the duplicate index, merged answers and events, undoing a merge,
feedback to every source when the case ends, and the citizen lookup."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from services.common import privacy
from services.contracts.errors import Conflict, Invalid, NotFound
from services.intake import handlers
from services.intake.merge import profile_from_case
from services.intake.models import Case, MergeKey, MergeProfileRow
from tests.unit.intake.conftest import NOW, ago
from tests.unit.intake.test_submissions import valid

HOTLINE = valid("hotline", content="来电人称其邻居李某在两家交界处砌院墙，占用其家宅基地约半米，多次协商未果，要求相关部门协调处理。")
PETITION = valid("petition", petition_no="XF-0100", petitioner_name="王秀英", petitioner_phone="13800001001",
                 id_number=None, township="大仲村镇", received_at=ago(hours=1),
                 content="我叫王秀英，是大仲村镇后楼村村民。去年冬天邻居李某翻盖房子时把院墙往我家这边挪了半米多，"
                         "占了我家的宅基地。村里调解了两次，他就是不拆，请求上级主持公道。")
OTHER_DISPUTE = valid("app", post_id="APP-0100", phone="13800001001",
                      content="我家在后楼村开的小卖部，进货的货款被批发商卷走了三万元，人也找不着了。")


def merged_pair(intake):
    first = intake.submit("hotline", HOTLINE)
    second = intake.submit("petition", PETITION, user="xinfang")
    return first, second


def test_a_repeat_through_another_channel_is_merged_with_its_reasons(intake):
    first, second = merged_pair(intake)
    assert second == {"case_no": first["case_no"], "status": "merged", "merged_into": first["case_no"],
                      "created": True}
    merged = intake.events("case_merged")[0]["data"]
    assert merged["case_no"] == first["case_no"] and merged["score"] >= 0.5
    assert merged["matched"]["phone"] == "138****1001"  # masked, never the number
    assert any("same phone" in r for r in merged["reasons"]) and merged["sources"] == 2
    assert "13800001001" not in str(merged["matched"]) + str(merged["reasons"])
    assert intake.count(Case) == 1 and not intake.events("case_received")[1:]
    view = intake.read(handlers.case_view, first["case_no"])
    hotline, petition = view["sources"]
    assert hotline["merged"] is None and petition["merged"]["score"] == merged["score"]
    # each source keeps what it is owed: the 12345 call-back, the 信访 written reply
    assert {o["kind"] for o in hotline["obligations"]} == {"callback", "platform_feedback"}
    assert {o["kind"] for o in petition["obligations"]} == {"acceptance_notice", "written_reply"}


def test_a_different_dispute_of_the_same_person_is_not_merged(intake):
    first = intake.submit("hotline", HOTLINE)
    other = intake.submit("app", OTHER_DISPUTE)
    assert other["status"] == "received" and other["case_no"] != first["case_no"]


def test_the_merge_window_is_measured_from_the_case_s_latest_report(intake, clock):
    first = intake.submit("hotline", HOTLINE)
    clock.advance(timedelta(days=45))
    late = intake.submit("petition", dict(PETITION, received_at=(NOW + timedelta(days=45)).isoformat()))
    assert late["status"] == "received" and late["case_no"] != first["case_no"]


def test_the_same_id_number_is_matched_across_channels(intake):
    petition = valid("petition")  # with an ID number
    first = intake.submit("petition", petition)
    walkin = valid("walkin", visit_no="JF-0200", visitor_name="陈玉兰", visitor_phone="13700005555",
                   id_number="371324198203150024", content="小叔子强占我丈夫留下的三亩承包地，我来中心请求调解。")
    second = intake.submit("walkin", walkin)
    assert second["merged_into"] == first["case_no"]
    matched = intake.events("case_merged")[0]["data"]["matched"]
    assert matched["id_number"] == "3713**********0024"


def test_an_emergency_in_a_merged_report_still_alerts_at_once(intake):
    first = intake.submit("hotline", HOTLINE)
    urgent = dict(PETITION, content=PETITION["content"] + "他现在拿着刀在我家门口骂，说要砍死我们，快来人！")
    second = intake.submit("petition", urgent)
    assert second["status"] == "merged"
    assert [e["data"]["case_no"] for e in intake.events("case_urgent")] == [first["case_no"]]
    assert intake.read(handlers.case_view, first["case_no"])["urgent"] is True


def test_the_check_reads_the_index_not_the_cases(intake):
    from sqlalchemy import event

    first = intake.submit("hotline", HOTLINE)
    assert intake.count(MergeKey) >= 10 and intake.count(MergeProfileRow) == 1
    statements = []
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(intake.db.engine, "before_cursor_execute", listener)
    try:
        with intake.db.reading() as session:
            case = {"channel": "petition", "content": PETITION["content"], "received_at": NOW, "title": None,
                    "township": "371324-004", "village": None, "complainant": {"phone": "13800001001"}}
            match = handlers.find_merge_match(session, profile_from_case("", case))
    finally:
        event.remove(intake.db.engine, "before_cursor_execute", listener)
    assert match is not None and match.case_no == first["case_no"]
    touched = " ".join(statements)
    assert "merge_keys" in touched and " cases" not in touched and " sources" not in touched


def test_a_wrong_merge_is_undone_the_source_becomes_a_case_of_its_own(intake):
    first, second = merged_pair(intake)
    answer = intake.run(handlers.unmerge, first["case_no"], "petition", "XF-0100", "不是同一堵墙", "staff-1")
    new_case = answer["new_case_no"]
    assert new_case != first["case_no"]
    unmerged = intake.events("case_unmerged")[0]["data"]
    assert unmerged == {**unmerged, "case_no": first["case_no"], "new_case_no": new_case, "channel": "petition",
                        "reference": "XF-0100", "reason": "不是同一堵墙", "actor": "staff-1"}
    received = intake.events("case_received")[-1]["data"]
    assert received["case_no"] == new_case and received["source"]["reference"] == "XF-0100"
    old = intake.read(handlers.case_view, first["case_no"])
    new = intake.read(handlers.case_view, new_case)
    assert [s["reference"] for s in old["sources"]] == ["GD-0001"]
    assert [s["reference"] for s in new["sources"]] == ["XF-0100"]
    assert new["sources"][0]["unmerged"][0]["from_case"] == first["case_no"]
    # the petition system learns its report's new case number
    told = intake.published("intake.egress")[-1]
    assert told["routing_key"] == "petition.case_unmerged" and told["body"]["case_no"] == new_case
    # a resend now answers with where the report is
    assert intake.submit("petition", PETITION)["case_no"] == new_case
    with intake.db.reading() as session:
        keys_of = {row.case_no for row in session.query(MergeKey)}
    assert keys_of == {first["case_no"], new_case}


def test_only_a_merged_source_of_an_open_case_can_be_split_off(intake):
    first, _ = merged_pair(intake)
    with pytest.raises(Conflict):
        intake.run(handlers.unmerge, first["case_no"], "hotline", "GD-0001", "x", "staff")
    with pytest.raises(Invalid):
        intake.run(handlers.unmerge, first["case_no"], "petition", "XF-0100", " ", "staff")
    with pytest.raises(NotFound):
        intake.run(handlers.unmerge, first["case_no"], "petition", "XF-9999", "x", "staff")
    intake.run(handlers.case_finished, "case_closed", {"case_no": first["case_no"], "outcome": "resolved",
                                                        "closed_at": NOW})
    with pytest.raises(Conflict):
        intake.run(handlers.unmerge, first["case_no"], "petition", "XF-0100", "x", "staff")


def test_every_source_gets_its_feedback_when_the_case_is_resolved_and_closed(intake):
    first, _ = merged_pair(intake)
    case_no = first["case_no"]
    told = intake.run(handlers.case_finished, "case_resolved", {
        "case_no": case_no, "outcome": "resolved", "summary": "经调解，李某同意拆除越界院墙。",
        "resolved_at": NOW + timedelta(days=3)})
    assert told == 2
    egress = intake.published("intake.egress")
    assert {m["routing_key"] for m in egress} == {"hotline.case_resolved", "petition.case_resolved"}
    for message in egress:
        body = message["body"]
        assert body["case_no"] == case_no and body["status"] == "resolved"
        assert body["reply"] == "经调解，李某同意拆除越界院墙。" and body["at"].startswith("2026-03-05")
        assert body["reference"] in ("GD-0001", "XF-0100") and message["correlation_id"] == case_no
    view = intake.read(handlers.case_view, case_no)
    assert all(s["feedback_sent_at"] for s in view["sources"])
    platform = next(o for o in view["sources"][0]["obligations"] if o["kind"] == "platform_feedback")
    assert platform["fulfilled_at"]
    assert intake.count(MergeKey) == 0  # no longer a merge candidate
    again = intake.submit("app", dict(OTHER_DISPUTE, content=HOTLINE["content"]))
    assert again["status"] == "received"

    intake.run(handlers.case_finished, "case_closed", {"case_no": case_no, "outcome": "resolved",
                                                        "closed_at": NOW + timedelta(days=10)})
    closed = [m for m in intake.published("intake.egress") if m["routing_key"].endswith("case_closed")]
    assert len(closed) == 2 and {m["body"]["status"] for m in closed} == {"closed"}
    assert len({m["message_id"] for m in intake.published("intake.egress")}) == 4  # stable, distinct ids
    assert intake.read(handlers.case_view, case_no)["status"] == "closed"


def test_the_citizen_finds_their_case_with_its_number_and_their_phone(intake):
    first, _ = merged_pair(intake)
    case_no = first["case_no"]
    view = intake.read(handlers.lookup, case_no, "138-0000-1001")
    assert view["case_no"] == case_no and {s["channel"] for s in view["sources"]} == {"hotline", "petition"}
    assert "13800001001" not in str(view) and "王秀英" not in str(view)
    assert all(o.keys() == {"label", "due_at"} for s in view["sources"] for o in s["obligations"])
    for wrong in ((case_no, "13800009999"), ("371324-20260302-999999", "13800001001"), (case_no, ""),
                  (case_no, None), ("x" * 100, "13800001001")):
        with pytest.raises(NotFound) as raised:
            intake.read(handlers.lookup, *wrong)
        assert str(raised.value) == "no case with this number and phone"


def test_the_profile_stores_no_clear_phone_and_an_encrypted_address(intake):
    intake.submit("hotline", valid("hotline", address="后楼村东头第三户"))
    with intake.db.reading() as session:
        row = session.query(MergeProfileRow).one()
        profile, address = row.profile, row.address
        raw = session.execute(text("SELECT address FROM merge_profiles")).one()
    assert "13800001001" not in str(profile) and address == "后楼村东头第三户"
    assert raw.address != "后楼村东头第三户" and privacy.decrypt(raw.address) == "后楼村东头第三户"
