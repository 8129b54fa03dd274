"""From each channel's validated submission to the one canonical case."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from services.contracts.channels import SubmissionInvalid, load_submission
from services.intake.canonical import (
    StaticPlaces,
    add_official_working_days,
    due_time,
    to_canonical,
    township_named_in,
)

NOW = datetime(2024, 5, 1, 2, 0, tzinfo=timezone.utc)
LOCAL = timezone(timedelta(hours=8))

PLACES = StaticPlaces(
    townships=[
        {"code": "T-BZ", "name": "卞庄街道"},
        {"code": "T-LL", "name": "兰陵镇"},
        {"code": "T-DZ", "name": "大仲村镇"},
        {"code": "T-XX", "name": "新兴镇"},
        {"code": "T-SY", "name": "尚岩镇"},
        {"code": "T-XC", "name": "向城镇"},
        {"code": "T-CC", "name": "长城镇", "aliases": ["长城"]},
        {"code": "T-XCX", "name": "下村乡"},
    ],
    villages=[
        {"code": "V-HL", "name": "后楼村", "township": "T-DZ"},
        {"code": "V-LZ", "name": "刘庄村", "township": "T-XX"},
    ],
    grids=[{"code": "DZ-HL-01", "village": "V-HL", "township": "T-DZ"}],
    not_townships=["兰陵县"],
)

SUBMISSIONS = {
    "hotline": {
        "order_no": "GD20240501000123",
        "caller_name": "王秀英",
        "caller_phone": "138 0000 1001",
        "received_at": "2024-05-01T09:30:00+08:00",
        "content": "来电人称邻居砌院墙占用其家宅基地约半米，多次协商未果，要求协调处理。",
        "township": "大仲村镇",
        "village": "后楼村",
    },
    "petition": {
        "petition_no": "XF-2024-000045",
        "petitioner_name": "陈玉兰",
        "petitioner_phone": "13800001005",
        "id_number": "371324198203150024",
        "form": "visit",
        "received_at": "2024-04-29T15:00:00+08:00",
        "content": "丈夫去世后，小叔子强占我家承包地，请求依法确认承包经营权。",
        "township": "T-SY",
        "people_count": 2,
    },
    "opinion": {
        "lead_id": "YQ-88812",
        "source_platform": "微博",
        "url": "https://weibo.example/post/88812",
        "published_at": "2024-04-30T21:15:00+08:00",
        "title": "新兴镇刘庄村养猪场污水横流",
        "summary": "网友称刘庄村东头一家养猪场将粪水排入村边水沟。",
        "content": "全文：……",
        "heat": 812.5,
    },
    "app": {
        "post_id": "P9000123",
        "user_id": "u-77102",
        "phone": "13800001003",
        "real_name": "刘德明",
        "section": "miao",
        "content": "想请老苗调解室帮忙调解和邻居的排水纠纷。",
        "township": "新兴",
        "wants_mediator": "苗某",
    },
    "grid": {
        "report_no": "WG-371324-0001",
        "grid_code": "DZ-HL-01",
        "worker_id": "GW0123",
        "content": "网格员走访发现两户因宅基地界墙发生纠纷，现场调解未果。",
        "resolved_on_site": False,
        "parties": [
            {"role": "respondent", "name": "李长河"},
            {"role": "applicant", "name": "王秀英", "phone": "13800001001"},
        ],
        "reported_at": "2024-05-01T08:00:00+08:00",
    },
    "walkin": {
        "visit_no": "JF-20240501-07",
        "centre": "county",
        "receptionist_id": "R-12",
        "visitor_name": "孙浩",
        "visitor_phone": "0539-5101006",
        "content": "被货车撞伤致腿骨骨折，肇事司机拒不支付医疗费用，申请调解。",
        "township": "向城镇",
    },
}


def canonical(channel: str, now: datetime = NOW, **changes) -> dict:
    payload = {**SUBMISSIONS[channel], **changes}
    return to_canonical(channel, load_submission(channel, payload, now), PLACES, now)


@pytest.mark.parametrize(
    "channel, reference, township, complainant",
    [
        ("hotline", "GD20240501000123", "T-DZ", {"name": "王秀英", "phone": "13800001001", "id_number": None, "user_id": None}),
        ("petition", "XF-2024-000045", "T-SY",
         {"name": "陈玉兰", "phone": "13800001005", "id_number": "371324198203150024", "user_id": None}),
        ("opinion", "YQ-88812", "T-XX", None),
        ("app", "P9000123", "T-XX", {"name": "刘德明", "phone": "13800001003", "id_number": None, "user_id": "u-77102"}),
        ("grid", "WG-371324-0001", "T-DZ", {"name": "王秀英", "phone": "13800001001", "id_number": None, "user_id": None}),
        ("walkin", "JF-20240501-07", "T-XC", {"name": "孙浩", "phone": "0539-5101006", "id_number": None, "user_id": None}),
    ],
)
def test_each_channel_maps_to_the_canonical_case(channel, reference, township, complainant):
    case = canonical(channel)
    assert (case["channel"], case["reference"], case["township"], case["complainant"]) == (
        channel, reference, township, complainant,
    )
    assert case["received_at"].tzinfo == timezone.utc
    assert case["content"] and case["title"]
    assert case["obligations"]


def test_channel_specific_fields():
    assert canonical("petition")["petition_form"] == "visit"
    assert canonical("petition")["people_count"] == 2
    assert canonical("app")["app_section"] == "miao"
    assert canonical("app")["details"]["wants_mediator"] == "苗某"
    assert canonical("hotline")["petition_form"] is None
    assert canonical("grid")["resolved_on_site"] is False
    assert canonical("walkin")["resolved_on_site"] is None
    opinion = canonical("opinion")
    assert opinion["details"]["url"] == "https://weibo.example/post/88812"
    assert opinion["details"]["heat"] == 812.5
    assert opinion["content"] == "网友称刘庄村东头一家养猪场将粪水排入村边水沟。\n\n全文：……"


def test_the_source_time_of_receipt_becomes_received_at_in_utc():
    assert canonical("hotline")["received_at"] == datetime(2024, 5, 1, 1, 30, tzinfo=timezone.utc)
    assert canonical("opinion")["received_at"] == datetime(2024, 4, 30, 13, 15, tzinfo=timezone.utc)
    assert canonical("grid")["received_at"] == datetime(2024, 5, 1, 0, 0, tzinfo=timezone.utc)
    assert canonical("walkin")["received_at"] == NOW  # no visited_at given


def test_a_title_is_made_from_the_first_sentence_when_none_is_given():
    assert canonical("walkin")["title"] == "被货车撞伤致腿骨骨折，肇事司机拒不支付医疗费用，申请调解"
    long_sentence = "邻居" * 40 + "。后面的话。"
    assert canonical("walkin", content=long_sentence)["title"] == "邻居" * 15 + "…"


@pytest.mark.parametrize("given, code", [("大仲村镇", "T-DZ"), ("T-DZ", "T-DZ"), ("大仲村", "T-DZ"), ("长城", "T-CC")])
def test_a_township_is_found_by_name_code_alias_or_name_without_suffix(given, code):
    assert canonical("hotline", township=given)["township"] == code


def test_an_unknown_township_is_a_field_error_not_a_guess():
    with pytest.raises(SubmissionInvalid) as caught:
        canonical("hotline", township="临沂市")
    assert caught.value.fields == {"township": ["is not a township name or code in the directory"]}


def test_an_unknown_grid_is_a_field_error():
    with pytest.raises(SubmissionInvalid) as caught:
        canonical("grid", grid_code="XX-99")
    assert caught.value.fields == {"grid_code": ["is not a grid in the directory"]}


def test_a_grid_report_takes_its_place_from_the_grid():
    case = canonical("grid")
    assert (case["township"], case["village"], case["grid_code"]) == ("T-DZ", "V-HL", "DZ-HL-01")


def test_a_known_village_is_resolved_and_an_unknown_one_kept_as_written():
    assert (canonical("hotline")["village"], canonical("hotline")["village_name"]) == ("V-HL", "后楼村")
    unknown = canonical("hotline", village="新建村")
    assert (unknown["village"], unknown["village_name"]) == (None, "新建村")


class TestOpinionWithoutTownship:
    @pytest.mark.parametrize(
        "text, code",
        [
            ("新兴镇刘庄村养猪场污水横流", "T-XX"),
            ("兰陵县一工地农民工讨薪", None),          # the county, not 兰陵镇
            ("兰陵县兰陵镇一工地农民工讨薪", "T-LL"),
            ("新兴镇和尚岩镇两地村民发生冲突", None),   # two townships: county level
            ("某地一工地农民工讨薪", None),
        ],
    )
    def test_the_township_named_in_the_text_or_none(self, text, code):
        case = canonical("opinion", title=text, summary="网帖内容。")
        assert case["township"] == code

    def test_a_township_given_by_the_platform_wins(self):
        assert canonical("opinion", township="尚岩镇")["township"] == "T-SY"

    def test_the_lookup_helper(self):
        assert township_named_in("下村乡东沟村公交停运", PLACES) == "T-XCX"
        assert township_named_in("", PLACES) is None


class TestObligations:
    def kinds(self, case):
        return [obligation["kind"] for obligation in case["obligations"]]

    def test_every_source_is_owed_something(self):
        assert {channel: self.kinds(canonical(channel)) for channel in SUBMISSIONS} == {
            "hotline": ["callback", "platform_feedback"],
            "petition": ["acceptance_notice", "written_reply"],
            "opinion": ["platform_response"],
            "app": ["app_reply"],
            "grid": ["report_back"],
            "walkin": ["onsite_receipt", "result_notice"],
        }

    def test_petition_periods_are_statutory_calendar_days(self):
        # Received 2024-04-29 (local); 15 and 60 days run from the next day.
        due = {o["kind"]: o["due_at"] for o in canonical("petition")["obligations"]}
        assert due["acceptance_notice"] == datetime(2024, 5, 15, tzinfo=LOCAL).astimezone(timezone.utc).isoformat()
        assert due["written_reply"] == datetime(2024, 6, 29, tzinfo=LOCAL).astimezone(timezone.utc).isoformat()

    def test_hotline_working_days_skip_the_national_day_holiday(self):
        # 2024-09-30 + 5 working days: 1-7 October are holidays, Saturday 12 October is worked.
        case = canonical("hotline", now=datetime(2024, 9, 30, 3, tzinfo=timezone.utc),
                         received_at="2024-09-30T10:00:00+08:00")
        due = {o["kind"]: o["due_at"] for o in case["obligations"]}
        assert due["callback"] == "2024-10-12T16:00:00+00:00"

    def test_the_platform_deadline_wins_and_no_callback_when_not_wanted(self):
        case = canonical("hotline", wants_callback=False, reply_deadline="2024-05-03T18:00:00+08:00")
        assert [(o["kind"], o["due_at"]) for o in case["obligations"]] == [
            ("platform_feedback", "2024-05-03T10:00:00+00:00")
        ]

    def test_an_opinion_is_answered_within_48_hours(self):
        (obligation,) = canonical("opinion")["obligations"]
        assert obligation["due_at"] == "2024-05-02T13:15:00+00:00"
        assert obligation["to"] == "source_system"

    def test_a_walkin_visitor_gets_a_receipt_at_once(self):
        receipt = canonical("walkin")["obligations"][0]
        assert (receipt["kind"], receipt["due_at"]) == ("onsite_receipt", NOW.isoformat())
        assert canonical("walkin")["obligations"][1]["due_at"] is None

    def test_a_grid_report_resolved_on_site_owes_no_report_back(self):
        assert canonical("grid", resolved_on_site=True)["obligations"] == []

    def test_each_obligation_says_why(self):
        for channel in SUBMISSIONS:
            for obligation in canonical(channel)["obligations"]:
                assert obligation["label"] and obligation["basis"] and obligation["to"]


def test_urgent_flags_come_from_the_text():
    calm = canonical("hotline")
    assert (calm["urgent"], calm["urgent_signals"]) == (False, [])
    alarm = canonical("hotline", content="来电人称邻居现在站在楼顶上说要跳楼，情绪激动。")
    assert alarm["urgent"] is True
    assert alarm["urgent_signals"] == ["suicide_threat: 跳楼"]


def test_unknown_fields_are_kept_in_the_details():
    case = canonical("hotline", operator_seat="A12")
    assert case["details"]["unknown_fields"] == ["operator_seat"]


def test_parties_are_carried_as_sent():
    assert canonical("grid")["parties"] == [
        {"role": "respondent", "name": "李长河"},
        {"role": "applicant", "name": "王秀英", "phone": "13800001001"},
    ]


def test_working_days_fall_back_to_monday_to_friday_for_an_unknown_year(caplog):
    with caplog.at_level(logging.WARNING):
        assert add_official_working_days(date(2031, 1, 3), 2) == date(2031, 1, 7)  # Friday -> Tuesday
    assert "official calendar unknown for 2031" in caplog.text


def test_due_time_units():
    received = datetime(2024, 5, 1, 1, 30, tzinfo=timezone.utc)
    assert due_time(received, {"amount": 48, "unit": "hours"}, add_official_working_days) == received + timedelta(hours=48)
    with pytest.raises(ValueError):
        due_time(received, {"amount": 1, "unit": "fortnights"}, add_official_working_days)


def test_ambiguous_stems_are_not_resolved():
    places = StaticPlaces(townships=[{"code": "A", "name": "东山镇"}, {"code": "B", "name": "东山乡"}])
    assert places.township("东山") is None
    assert places.township("东山乡") == "B"
