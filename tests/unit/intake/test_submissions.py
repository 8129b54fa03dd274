"""One door for every channel: valid and invalid submissions, idempotency, grid reports,
emergencies, and the places cache (handlers.submit over a real database)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.contracts.errors import Conflict, Invalid, Unavailable
from services.intake import handlers
from services.intake.models import Case, IngressMessage, MergeKey, Source
from tests.unit.intake.conftest import NOW, ago

WALL = "邻居李长河翻盖房子把院墙往我家这边挪了半米，占了我家宅基地，找村里调解了两回没用。"


def valid(channel: str, **changes) -> dict:
    bodies = {
        "hotline": {"order_no": "GD-0001", "caller_name": "王秀英", "caller_phone": "138 0000 1001",
                    "received_at": ago(hours=2), "content": WALL, "township": "大仲村镇", "village": "后楼村",
                    "callback_phone": "13900002222"},
        "petition": {"petition_no": "XF-0001", "petitioner_name": "陈玉兰", "petitioner_phone": "13800001005",
                     "id_number": "371324198203150024", "form": "letter", "received_at": ago(days=1),
                     "content": "丈夫去世后，小叔子强占我家三亩承包地耕种，请求确认承包经营权。", "township": "兰陵镇"},
        "opinion": {"lead_id": "YQ-0001", "source_platform": "本地论坛", "url": "https://example.org/t/1",
                    "published_at": ago(hours=5), "title": "卞庄一小区电梯坏了半个月没人修",
                    "summary": "网友发帖称卞庄街道阳光花园小区5号楼电梯坏了半个多月，物业一直不修。", "heat": 35.5},
        "app": {"post_id": "APP-0001", "user_id": "u100", "phone": "13700003001", "section": "miao",
                "content": "想请老苗调解一下我和邻居的排水沟纠纷，下雨就淹我家院子。", "township": "大仲村镇",
                "wants_mediator": "苗振华"},
        "grid": {"report_no": "WG-0001", "grid_code": "371324-004-001-01", "worker_id": "GW-004-001-01",
                 "content": "网格员巡查发现两户因宅基地界墙争执，现场调解未果，上报。", "resolved_on_site": False,
                 "parties": [{"role": "applicant", "name": "赵大山", "phone": "13700003002"},
                             {"role": "respondent", "name": "钱二河"}]},
        "walkin": {"visit_no": "JF-0001", "centre": "371324-003-TJ", "receptionist_id": "R-01",
                   "visitor_name": "孙桂兰", "visitor_phone": "13700003003", "content": "女儿离婚后前夫不付孩子的抚养费，请求调解。",
                   "township": "兰陵镇"},
    }
    return {**bodies[channel], **changes}


INVALID = {  # channel -> (changes, the fields that must be named)
    "hotline": ({"caller_phone": "12", "received_at": "2026-03-01 10:00"}, {"caller_phone", "received_at"}),
    "petition": ({"form": "fax", "id_number": "371324198203150025"}, {"form", "id_number"}),
    "opinion": ({"url": "ftp://x", "heat": -1}, {"url", "heat"}),
    "app": ({"section": "hot_topics", "phone": None}, {"section", "phone"}),
    "grid": ({"resolved_on_site": "yes", "grid_code": ""}, {"resolved_on_site", "grid_code"}),
    "walkin": ({"visitor_name": "", "content": "a\u202eb"}, {"visitor_name", "content"}),
}


@pytest.mark.parametrize("channel", ["hotline", "petition", "opinion", "app", "grid", "walkin"])
def test_every_channel_opens_a_case_with_its_source_and_what_it_is_owed(intake, channel):
    answer = intake.submit(channel, valid(channel))
    assert answer["status"] == "received" and answer["created"] is True
    assert answer["case_no"].startswith("371324-20260302-")
    received = intake.events("case_received")[0]["data"]
    assert received["case_no"] == answer["case_no"]
    assert received["source"]["channel"] == channel
    assert received["source"]["obligations"], "every channel owes its source something"
    assert "callback_phone" not in received["details"]  # personal data travels sealed, not in details
    view = intake.read(handlers.case_view, answer["case_no"])
    assert [s["channel"] for s in view["sources"]] == [channel]


def test_the_case_received_event_carries_what_routing_and_mediation_need(intake):
    intake.submit("app", valid("app"))
    data = intake.events("case_received")[0]["data"]
    assert data["wants_mediator"] == "苗振华" and data["app_section"] == "miao"
    intake.submit("hotline", valid("hotline", order_no="GD-0002", content="前楼村的路灯坏了一个月。",
                                   village="小王庄", caller_phone="13700009999"))
    data = intake.events("case_received")[1]["data"]
    assert data["village"] is None and data["village_name"] == "小王庄"  # unknown to the directory: kept as written
    assert data["source"]["callback_phone"] != "13900002222"  # sealed on the wire


@pytest.mark.parametrize("channel", sorted(INVALID))
def test_an_invalid_submission_names_each_bad_field_and_stores_nothing(intake, channel):
    changes, fields = INVALID[channel]
    with pytest.raises(Invalid) as raised:
        intake.submit(channel, valid(channel, **changes))
    assert fields <= set(raised.value.fields)
    assert intake.count(Case) == intake.count(Source) == 0
    assert intake.outbox() == []


def test_unknown_township_is_a_field_error_not_a_guess(intake):
    with pytest.raises(Invalid) as raised:
        intake.submit("hotline", valid("hotline", township="不存在镇"))
    assert set(raised.value.fields) == {"township"}


def test_dates_must_be_sane(intake):
    with pytest.raises(Invalid) as raised:
        intake.submit("hotline", valid("hotline", received_at=(NOW + timedelta(hours=1)).isoformat()))
    assert "in the future" in raised.value.fields["received_at"][0]
    with pytest.raises(Invalid):
        intake.submit("hotline", valid("hotline", received_at=ago(days=400)))


def test_the_same_reference_again_returns_the_first_answer_and_a_changed_body_conflicts(intake):
    first = intake.submit("hotline", valid("hotline"))
    again = intake.submit("hotline", valid("hotline", caller_phone="13800001001"))  # the same, written otherwise
    assert again == {**first, "created": False}
    with pytest.raises(Conflict) as raised:
        intake.submit("hotline", valid("hotline", content="另一件事：村里路灯坏了。"))
    assert "order_no" in raised.value.fields
    assert intake.count(Case) == 1 and len(intake.events("case_received")) == 1


def test_a_resend_long_after_its_dates_aged_out_still_gets_the_first_answer(intake, clock):
    first = intake.submit("hotline", valid("hotline"))
    clock.advance(timedelta(days=400))  # received_at is now older than max_age
    assert intake.submit("hotline", valid("hotline")) == {**first, "created": False}


def test_no_directory_yet_is_unavailable_not_invalid(tmp_path, clock, monkeypatch):
    from services.common.db import Database
    from services.intake.models import Base

    db = Database(f"sqlite:///{tmp_path / 'empty.db'}", Base.metadata, "intake", clock)
    db.create_all()
    with pytest.raises(Unavailable), db.transaction() as uow:
        handlers.submit(uow, "hotline", valid("hotline"), "s")


def test_a_grid_report_resolved_on_site_is_recorded_resolved_and_never_a_merge_target(intake):
    answer = intake.submit("grid", valid("grid", resolved_on_site=True, outcome="双方同意各退一步，界墙重新放线。"))
    case_no = answer["case_no"]
    data = intake.events("case_received")[0]["data"]
    assert data["resolved_on_site"] is True and data["onsite_outcome"].startswith("双方同意")
    assert intake.read(handlers.case_view, case_no)["status"] == "resolved"
    assert intake.count(MergeKey) == 0
    # the same dispute reported again is a case of its own: the resolved one is not reopened by intake
    again = intake.submit("grid", valid("grid", report_no="WG-0002"))
    assert again["status"] == "received" and again["case_no"] != case_no


def test_a_grid_report_not_resolved_enters_the_flow(intake):
    answer = intake.submit("grid", valid("grid"))
    assert intake.read(handlers.case_view, answer["case_no"])["status"] == "open"
    data = intake.events("case_received")[0]["data"]
    assert data["resolved_on_site"] is False and data["grid_code"] == "371324-004-001-01"
    assert data["grid_worker"] == "GW-004-001-01"


def test_an_emergency_is_flagged_at_once(intake):
    answer = intake.submit("hotline", valid("hotline", content="邻居现在拿着刀在我家门口，说要砍死我们，快来人！"))
    urgent = intake.events("case_urgent")
    assert [u["data"]["case_no"] for u in urgent] == [answer["case_no"]]
    assert "13800001001" not in str(urgent)  # the complainant travels sealed


def test_no_ingress_row_for_http_submissions(intake):
    intake.submit("hotline", valid("hotline"))
    assert intake.count(IngressMessage) == 0
