"""The six channel contracts: what each accepts, what it rejects and how it says why."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.contracts.channels import (
    CHANNELS,
    SubmissionInvalid,
    body_fingerprint,
    load_submission,
    reference_field,
)

NOW = datetime(2024, 5, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Lanling
RECEIVED = "2024-05-01T09:30:00+08:00"

VALID = {
    "hotline": {
        "order_no": "GD20240501000123",
        "caller_name": "王秀英",
        "caller_phone": "13800001001",
        "received_at": RECEIVED,
        "content": "来电人称邻居砌院墙占用其家宅基地约半米，多次协商未果。",
        "township": "大仲村镇",
    },
    "petition": {
        "petition_no": "XF-2024-000045",
        "petitioner_name": "陈玉兰",
        "petitioner_phone": "13800001005",
        "form": "letter",
        "received_at": RECEIVED,
        "content": "丈夫去世后，小叔子强占我家承包地，请求依法确认承包经营权。",
        "township": "尚岩镇",
    },
    "opinion": {
        "lead_id": "YQ-88812",
        "source_platform": "微博",
        "url": "https://weibo.example/post/88812",
        "published_at": "2024-04-30T21:15:00+08:00",
        "title": "兰陵一工地20余名农民工讨薪无果",
        "summary": "网帖称卞庄街道一工地二十余名农民工被拖欠工资四十余万元。",
    },
    "app": {
        "post_id": "P9000123",
        "user_id": "u-77102",
        "phone": "13800001003",
        "section": "speak",
        "content": "村东边的养猪场天天往沟里排粪水，味道太大了。",
        "township": "新兴镇",
    },
    "grid": {
        "report_no": "WG-371324-0001",
        "grid_code": "DZ-HL-01",
        "worker_id": "GW0123",
        "content": "网格员走访发现两户因宅基地界墙发生纠纷，现场调解未果。",
        "resolved_on_site": False,
    },
    "walkin": {
        "visit_no": "JF-20240501-07",
        "centre": "county",
        "receptionist_id": "R-12",
        "visitor_name": "孙浩",
        "visitor_phone": "13800001006",
        "content": "被货车撞伤致腿骨骨折，肇事司机拒不支付医疗费用，申请调解。",
        "township": "向城镇",
    },
}

# The contract of issue 3, written out here so a schema change that breaks it fails.
REQUIRED = {
    "hotline": ["order_no", "caller_name", "caller_phone", "received_at", "content", "township"],
    "petition": ["petition_no", "petitioner_name", "petitioner_phone", "form", "received_at", "content", "township"],
    "opinion": ["lead_id", "source_platform", "url", "published_at", "title", "summary"],
    "app": ["post_id", "user_id", "phone", "section", "content", "township"],
    "grid": ["report_no", "grid_code", "worker_id", "content", "resolved_on_site"],
    "walkin": ["visit_no", "centre", "receptionist_id", "visitor_name", "visitor_phone", "content", "township"],
}


def with_(channel: str, **changes) -> dict:
    payload = dict(VALID[channel])
    for key, value in changes.items():
        if value is ...:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def errors(channel: str, payload, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(SubmissionInvalid) as caught:
        load_submission(channel, payload, NOW, **kwargs)
    return caught.value.fields


def test_the_six_channels_are_known():
    assert set(CHANNELS) == set(REQUIRED)


@pytest.mark.parametrize("channel", sorted(VALID))
def test_a_valid_submission_loads(channel):
    loaded = load_submission(channel, VALID[channel], NOW)
    assert loaded[reference_field(channel)] == VALID[channel][reference_field(channel)]
    assert loaded["content" if channel != "opinion" else "summary"]
    assert loaded["unknown_fields"] == []


@pytest.mark.parametrize(
    "channel, field", [(channel, field) for channel, fields in REQUIRED.items() for field in fields]
)
def test_each_required_field_is_named_when_missing(channel, field):
    assert errors(channel, with_(channel, **{field: ...})) == {field: ["is required"]}


@pytest.mark.parametrize(
    "channel, field", [(channel, field) for channel, fields in REQUIRED.items() for field in fields[:2]]
)
def test_a_required_field_may_not_be_null(channel, field):
    assert errors(channel, with_(channel, **{field: None})) == {field: ["must not be null"]}


def test_a_null_optional_field_is_treated_as_absent():
    loaded = load_submission("hotline", with_("hotline", village=None, people_count=None), NOW)
    assert "village" not in loaded and "people_count" not in loaded


def test_every_bad_field_is_reported_at_once():
    bad = with_("petition", form="fax", petitioner_phone="12345", content="", received_at="yesterday")
    assert set(errors("petition", bad)) == {"form", "petitioner_phone", "content", "received_at"}


@pytest.mark.parametrize(
    "channel, field, value, reason",
    [
        ("petition", "form", "email", "must be one of: letter, visit, online"),
        ("app", "section", "hot_topics", "must be one of: speak, miao, ask_gov, accountability, advice"),
        ("hotline", "order_type", "gossip", "must be one of: complaint, help, inquiry, report, suggestion, praise"),
        ("grid", "resolved_on_site", "true", "must be true or false"),
        ("grid", "resolved_on_site", 1, "must be true or false"),
        ("petition", "people_count", 0, "must be between 1 and 100000"),
        ("petition", "people_count", "3", "must be a whole number"),
        ("petition", "people_count", 2.5, "must be a whole number"),
        ("petition", "people_count", True, "must be a whole number"),
        ("opinion", "url", "ftp://files.example/x", "must be an http(s) URL"),
        ("opinion", "heat", -1, "must not be negative"),
        ("hotline", "order_no", "GD 0001", "must be 1-64 letters, digits or . _ : / - (starting with a letter or digit)"),
        ("grid", "grid_code", "网格一", "must be 1-40 letters, digits or . _ - (starting with a letter or digit)"),
        ("hotline", "township", 17, "must be a string"),
        ("hotline", "content", "   ", "must not be blank"),
    ],
)
def test_field_rules(channel, field, value, reason):
    assert errors(channel, with_(channel, **{field: value})) == {field: [reason]}


@pytest.mark.parametrize(
    "given, loaded",
    [
        ("13800001001", "13800001001"),
        ("138 0000 1001", "13800001001"),
        ("+86 138-0000-1001", "13800001001"),
        ("008613800001001", "13800001001"),
        ("0539-5101004", "0539-5101004"),
        ("(0539) 51010048", "0539-51010048"),
        ("010-12345678", "010-12345678"),
        ("０５３９－５１０１００４", "0539-5101004"),
    ],
)
def test_phone_numbers_are_normalised(given, loaded):
    assert load_submission("hotline", with_("hotline", caller_phone=given), NOW)["caller_phone"] == loaded


@pytest.mark.parametrize("phone", ["54321", "12800001001", "1380000100", "138000010011", "5101004", "0539-51010", "110"])
def test_bad_phone_numbers_are_rejected_without_echoing_them(phone):
    reasons = errors("hotline", with_("hotline", caller_phone=phone))["caller_phone"]
    assert reasons[0].startswith("must be a mobile number")
    assert phone not in reasons[0]


@pytest.mark.parametrize(
    "number, reason",
    [
        ("11010519491231002X", None),
        ("11010519491231002x", None),
        ("110105194912310021", "has a wrong check digit"),
        ("110105194902300023", "contains an impossible birth date"),
        ("11010519491231002", "must be an 18-character resident ID number (17 digits and a digit or X)"),
        ("1101051949123100XX", "must be an 18-character resident ID number (17 digits and a digit or X)"),
    ],
)
def test_id_numbers_carry_a_valid_birth_date_and_check_digit(number, reason):
    payload = with_("petition", id_number=number)
    if reason is None:
        assert load_submission("petition", payload, NOW)["id_number"] == number.upper()
    else:
        assert errors("petition", payload) == {"id_number": [reason]}


def test_a_naive_time_is_rejected():
    assert errors("hotline", with_("hotline", received_at="2024-05-01T09:30:00")) == {
        "received_at": ["must include a UTC offset such as +08:00 (naive times are ambiguous)"]
    }


def test_a_time_in_the_future_is_rejected_beyond_five_minutes():
    soon = (NOW + timedelta(minutes=4)).isoformat()
    later = (NOW + timedelta(minutes=6)).isoformat()
    assert load_submission("hotline", with_("hotline", received_at=soon), NOW)
    assert errors("hotline", with_("hotline", received_at=later)) == {
        "received_at": ["must not be more than 5 minutes in the future"]
    }


def test_a_time_older_than_the_maximum_age_is_rejected():
    old = (NOW - timedelta(days=400)).isoformat()
    assert errors("opinion", with_("opinion", published_at=old)) == {
        "published_at": ["must not be more than 365 days old"]
    }
    assert load_submission("opinion", with_("opinion", published_at=old), NOW, max_age=timedelta(days=500))


def test_a_deadline_may_lie_in_the_future():
    deadline = (NOW + timedelta(days=5)).isoformat()
    loaded = load_submission("hotline", with_("hotline", reply_deadline=deadline), NOW)
    assert loaded["reply_deadline"] == NOW + timedelta(days=5)


def test_length_limits():
    assert errors("hotline", with_("hotline", content="字" * 20_001)) == {
        "content": ["must be at most 20000 characters"]
    }
    assert load_submission("hotline", with_("hotline", content="字" * 20_000), NOW)
    assert errors("hotline", with_("hotline", title="题" * 201)) == {"title": ["must be at most 200 characters"]}


@pytest.mark.parametrize("name", ["王\x00秀英", "王秀英\n", "王\u202e秀英", "王\x7f秀英"])
def test_control_characters_are_rejected(name):
    assert errors("hotline", with_("hotline", caller_name=f"{name}x")) == {
        "caller_name": ["must not contain control characters"]
    }


def test_line_breaks_are_allowed_in_content_only():
    loaded = load_submission("hotline", with_("hotline", content="第一段。\n第二段。"), NOW)
    assert loaded["content"] == "第一段。\n第二段。"


def test_a_lone_surrogate_is_invalid_utf8():
    assert errors("hotline", with_("hotline", content="abc\ud800")) == {
        "content": ["must be valid UTF-8 text (it contains a lone surrogate)"]
    }


def test_strings_are_stripped():
    loaded = load_submission("hotline", with_("hotline", caller_name="  王秀英\u3000", township=" 大仲村镇 "), NOW)
    assert (loaded["caller_name"], loaded["township"]) == ("王秀英", "大仲村镇")


def test_parties_are_validated_item_by_item():
    parties = [
        {"role": "applicant", "name": "王秀英", "phone": "13800001001"},
        {"role": "neighbour", "name": "李长河", "phone": "99"},
    ]
    assert errors("grid", with_("grid", parties=parties)) == {
        "parties.1.role": ["must be one of: applicant, respondent, third_party"],
        "parties.1.phone": [
            "must be a mobile number (11 digits starting 13-19) or a landline with its area code, e.g. 0539-1234567"
        ],
    }
    assert errors("grid", with_("grid", parties=["王秀英"])) == {"parties.0": ["must be an object"]}


def test_unknown_fields_are_dropped_and_listed_by_name():
    payload = with_("grid", parties=[{"role": "applicant", "name": "王秀英", "age": 61}], gps="35.1,118.0")
    loaded = load_submission("grid", payload, NOW)
    assert loaded["unknown_fields"] == ["gps", "parties.0.age"]
    assert "gps" not in loaded and "age" not in loaded["parties"][0]


def test_an_unknown_channel_is_named():
    with pytest.raises(SubmissionInvalid) as caught:
        load_submission("fax", VALID["hotline"], NOW)
    assert caught.value.fields == {
        "channel": ["unknown channel 'fax'; expected one of: app, grid, hotline, opinion, petition, walkin"]
    }


@pytest.mark.parametrize("body", [[], "text", None, 3])
def test_the_body_must_be_an_object(body):
    assert errors("hotline", body) == {"_body": ["must be a JSON object"]}


def test_reference_fields():
    assert {channel: reference_field(channel) for channel in CHANNELS} == {
        "hotline": "order_no",
        "petition": "petition_no",
        "opinion": "lead_id",
        "app": "post_id",
        "grid": "report_no",
        "walkin": "visit_no",
    }


def test_the_error_lists_field_and_reason_in_its_message():
    with pytest.raises(SubmissionInvalid) as caught:
        load_submission("petition", with_("petition", form="fax"), NOW)
    assert str(caught.value) == "form: must be one of: letter, visit, online"


class TestBodyFingerprint:
    def test_stable_under_key_order_formatting_and_harmless_differences(self):
        original = VALID["hotline"]
        reordered = json.loads(json.dumps(dict(reversed(list(original.items()))), indent=4))
        restated = dict(
            original,
            caller_name=f"  {original['caller_name']} ",
            caller_phone="+86 138-0000-1001",
            received_at="2024-05-01T01:30:00Z",  # the same instant
            village=None,
            new_platform_field="v2",
        )
        fingerprint = body_fingerprint("hotline", original)
        assert body_fingerprint("hotline", reordered) == fingerprint
        assert body_fingerprint("hotline", restated) == fingerprint

    def test_changes_with_what_the_body_says(self):
        original = VALID["hotline"]
        assert body_fingerprint("hotline", original) != body_fingerprint(
            "hotline", dict(original, content=original["content"] + "又来电。")
        )
        assert body_fingerprint("hotline", original) != body_fingerprint(
            "hotline", dict(original, received_at="2024-05-01T09:31:00+08:00")
        )

    def test_differs_between_channels(self):
        assert body_fingerprint("hotline", VALID["hotline"]) != body_fingerprint(
            "walkin",
            {**VALID["walkin"], "content": VALID["hotline"]["content"]},
        )

    def test_does_not_depend_on_the_time_it_is_computed(self):
        # A resend a year later must still be recognised, so no age check applies here.
        old = dict(VALID["hotline"], received_at="2020-01-01T08:00:00+08:00")
        assert len(body_fingerprint("hotline", old)) == 64

    def test_an_invalid_body_has_no_fingerprint(self):
        with pytest.raises(SubmissionInvalid):
            body_fingerprint("hotline", with_("hotline", caller_phone="12"))
