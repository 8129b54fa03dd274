from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from services.common import privacy
from services.notify.rules import plan
from services.notify.templates import (DEFAULT_SMS_SIGNATURE, render, sms_fits_one_segment, sms_text,
                                       sms_units)

from .conftest import CASE_NO, EVERY_PHONE, ID_NUMBER, NOW, RATING_URL, sample_events

CITIZEN_EVENTS = ("case_received", "case_merged", "case_accepted", "case_resolved", "evaluation_requested",
                  "case_closed")


@pytest.fixture
def ALL(events, directory):
    """(event_type, event_data, planned message, rendered) for every message of every sample event."""
    return [(event_type, data, message, render(message.template, message.context))
            for event_type, data in events.items() for message in plan(event_type, data, directory, now=NOW)]


def test_every_event_renders_something(ALL):
    assert {event_type for event_type, *_ in ALL} == set(sample_events())


def test_each_message_is_complete(ALL):
    for _, _, message, rendered in ALL:
        text = f"{rendered.subject or ''}\n{rendered.body}"
        assert CASE_NO in text, message.template
        assert "None" not in text and "{{" not in text and "\n\n\n" not in text, message.template
        if message.channel == "sms":
            assert rendered.subject is None
        else:
            assert rendered.subject and "\n" not in rendered.subject, message.template


@pytest.mark.parametrize("event_type", CITIZEN_EVENTS)
def test_a_citizen_sms_fits_one_segment_with_the_signature(ALL, event_type):
    sms = [(m, r) for et, _, m, r in ALL if et == event_type and m.audience == "citizen" and m.channel == "sms"]
    assert sms
    for _, rendered in sms:
        text = sms_text(rendered.body)
        assert text.startswith(DEFAULT_SMS_SIGNATURE)
        assert sms_fits_one_segment(text), f"{sms_units(text)} units: {text}"
        assert CASE_NO in text


@pytest.mark.parametrize("event_type", ["case_resolved", "evaluation_requested"])
def test_rating_links_up_to_30_characters_fit(event_type, events, directory):
    def citizen_sms(url):
        data = {**events[event_type], "rating_url": url}
        message = next(m for m in plan(event_type, data, directory, now=NOW) if m.channel == "sms")
        return sms_text(render(message.template, message.context).body)

    link = "https://ll.gov.cn/r/" + "x" * 10
    assert len(link) == 30
    assert link in citizen_sms(link) and sms_fits_one_segment(citizen_sms(link))
    assert not sms_fits_one_segment(citizen_sms(link + "yyyy"))


def test_a_resolved_case_without_a_link_still_says_what_comes_next(events, directory):
    data = {k: v for k, v in events["case_resolved"].items() if k != "rating_url"}
    message = next(m for m in plan("case_resolved", data, directory, now=NOW) if m.channel == "sms")
    body = render(message.template, message.context).body
    assert "评价" in body and RATING_URL not in body and sms_fits_one_segment(sms_text(body))


def test_staff_get_deadline_in_local_time_township_and_link(ALL):
    staff = [(et, d, m, r) for et, d, m, r in ALL if m.audience != "citizen"]
    for event_type, data, message, rendered in staff:
        text = f"{rendered.subject}\n{rendered.body}"
        if "deadline" in data and message.audience in ("mediator", "supervisor", "unit"):
            assert "2026-12-04 17:30" in text, message.template
        if message.channel != "app_push":
            assert f"https://tj.lanling.gov.cn/console/cases/{CASE_NO}" in text, message.template
        if message.channel in ("inbox", "email"):
            assert "卞庄街道" in text, message.template


def test_no_output_carries_a_phone_or_id_number(ALL):
    for _, _, message, rendered in ALL:
        text = f"{rendered.subject or ''}\n{rendered.body}"
        for phone in EVERY_PHONE:
            assert phone not in text, message.template
        assert ID_NUMBER not in text
        assert not privacy.PHONE.search(text) and not privacy.ID_NUMBER.search(text), message.template


def test_masked_details_of_the_other_party_reach_only_the_inbox(ALL):
    inbox = [r.body for _, _, m, r in ALL if m.channel == "inbox" and m.event_type == "case_assigned"]
    assert all("138****1111" in body for body in inbox)
    leaving = [r.body for _, _, m, r in ALL if m.channel != "inbox"]
    assert not any("138****1111" in body or "李某" in body for body in leaving)


def test_a_missing_value_is_an_error_not_a_gap(events, directory):
    message = plan("case_accepted", events["case_accepted"], directory, now=NOW)[0]
    context = {k: v for k, v in message.context.items() if k != "case_no"}
    with pytest.raises(UndefinedError):
        render(message.template, context)


def test_segment_arithmetic():
    assert sms_fits_one_segment("短" * 70)
    assert not sms_fits_one_segment("短" * 71)
    assert not sms_fits_one_segment("短" * 69 + "😀")      # outside the BMP: two UCS-2 units
    assert sms_text("你好") == "【兰陵调解】你好" == sms_text("【兰陵调解】你好")
