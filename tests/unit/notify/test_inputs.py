"""Contract payloads, as their producers emit them, become planner input that reaches the right people."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.contracts.catalogue import consumed_by
from services.contracts.envelope import load_event
from services.notify import inputs
from services.notify.rules import StaticDirectory, plan
from services.notify.templates import render, sms_fits_one_segment, sms_text

from .contract_events import (COMPLAINANT, COUNTY_SUPERVISOR, MEDIATOR, NEW_COMPLAINANT, PHONES, SUPERVISOR,
                              TOWNSHIP, TOWNSHIP_NAME, VILLAGE, VILLAGE_NAME, expected, payloads, wire)

CASE_NO = "371324-20261201-000123"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)   # 10:00 in Lanling
NAMES = {TOWNSHIP: TOWNSHIP_NAME, VILLAGE: VILLAGE_NAME}


def as_consumed(event_type: str, data: dict):
    """Through the wire and back, as notify's consumer sees it (sealed fields decrypted)."""
    _, body = wire(event_type, data, CASE_NO, NOW)
    return load_event(body)


def known_after_received() -> inputs.Known:
    return inputs.Known(complainants=[inputs.citizen(COMPLAINANT)], assignees=[inputs.staff(MEDIATOR)],
                        township=TOWNSHIP, village=VILLAGE, dispute_type="劳动争议")


def directory(known: inputs.Known) -> StaticDirectory:
    return StaticDirectory(
        complainants_by_case={CASE_NO: known.complainants}, assignees_by_case={CASE_NO: known.assignees},
        supervisors_by_township={TOWNSHIP: [inputs.staff(SUPERVISOR)], None: [inputs.staff(COUNTY_SUPERVISOR)]},
        on_duty_by_township={TOWNSHIP: [inputs.staff(SUPERVISOR)], None: [inputs.staff(COUNTY_SUPERVISOR)]},
        coordinators=[inputs.staff(COUNTY_SUPERVISOR)],
    )


def planned(event_type: str, data: dict | None = None, known: inputs.Known | None = None):
    event = as_consumed(event_type, data or payloads(CASE_NO, NOW)[event_type])
    known = known or known_after_received()
    data = inputs.event_input(event.type, event.data, event_id=event.event_id, occurred_at=event.occurred_at,
                              case_no=event.correlation_id, known=known, place_name=lambda c: NAMES.get(c, c),
                              rating_url_template="https://ll.gov.cn/r/{token}")
    return plan(event.type, data, directory(known), now=NOW)


def as_expected(messages) -> set[tuple[str, str, str]]:
    return {(m.audience, "citizen" if m.audience == "citizen" else m.recipient.id, m.channel) for m in messages}


def test_every_event_notify_consumes_has_a_payload_here():
    assert {s.name for s in consumed_by("notify")} - {"directory_updated"} == set(payloads(CASE_NO))


@pytest.mark.parametrize("event_type", sorted(payloads(CASE_NO)))
def test_each_contract_event_reaches_its_people(event_type):
    messages = planned(event_type)
    assert as_expected(messages) == expected(event_type)
    for message in messages:
        rendered = render(message.template, message.context)
        text = f"{rendered.subject or ''}\n{rendered.body}"
        assert CASE_NO in text and "None" not in text
        assert not any(phone in text for phone in PHONES), message.template
        assert "371324-001" not in text.replace(CASE_NO, ""), "places are shown by name"
        if message.audience == "citizen" and message.channel == "sms":
            assert sms_fits_one_segment(sms_text(rendered.body)), text


def test_citizen_events_reach_every_known_complainant_once():
    known = known_after_received()
    known.complainants.append(inputs.citizen(NEW_COMPLAINANT))
    messages = planned("case_closed", known=known)
    assert sorted(m.recipient.contact for m in messages if m.channel == "sms") == sorted(
        [COMPLAINANT["phone"], NEW_COMPLAINANT["phone"]])


def test_an_event_without_people_falls_back_to_what_notify_knows():
    data = {**payloads(CASE_NO, NOW)["reminder_due"], "assignees": []}
    assert {m.recipient.id for m in planned("reminder_due", data)} == {MEDIATOR["id"]}
    data = {**payloads(CASE_NO, NOW)["case_closed"], "complainant": None}
    assert [m.recipient.contact for m in planned("case_closed", data) if m.channel == "sms"] == [COMPLAINANT["phone"]]


def test_an_anonymous_case_reaches_nobody_and_is_no_error():
    data = payloads(CASE_NO, NOW)["case_received"]
    data = {**data, "source": {**data["source"], "complainant": None}}
    assert planned("case_received", data) == []   # not even the complainants remembered for the case


def test_a_grid_report_settled_on_the_spot_is_not_told_a_mediator_is_coming():
    data = {**payloads(CASE_NO, NOW)["case_received"], "resolved_on_site": True}
    assert planned("case_received", data) == []


def test_a_citizen_never_carries_an_id_number_and_keeps_one_id_per_phone():
    person = inputs.citizen(COMPLAINANT)
    assert "id_number" not in person and person["phone"] == COMPLAINANT["phone"]
    spaced = inputs.citizen({**COMPLAINANT, "phone": "138 1234 5678"})
    assert inputs.citizen_id(person) == inputs.citizen_id({**spaced, "phone": "13812345678"})
    assert inputs.citizen({"name": "无联系方式"}) is None
    app_only = inputs.citizen({"name": "赵某", "user_id": "lsf-1"})
    assert app_only["id"].startswith("citizen-app-") and "lsf-1" not in app_only["id"]


def test_the_urgent_alert_names_the_signal_and_place():
    messages = planned("case_urgent")
    sms = next(m for m in messages if m.channel == "sms" and m.audience == "township_on_duty")
    text = render(sms.template, sms.context).body
    assert "自杀/自伤风险" in text and TOWNSHIP_NAME in text and all(m.urgent for m in messages)


def test_an_urgent_case_makes_its_assignment_urgent():
    known = known_after_received()
    known.urgent = True
    assert all(m.urgent for m in planned("case_assigned", known=known))
    assert not any(m.urgent for m in planned("case_assigned"))


def test_the_rating_link_comes_from_the_token_and_rating_words_read_well():
    sms = next(m for m in planned("evaluation_requested") if m.channel == "sms")
    assert "https://ll.gov.cn/r/Xk29aP7q" in render(sms.template, sms.context).body
    inbox = planned("case_evaluated")[0]
    assert "“满意”" in render(inbox.template, inbox.context).body


def test_the_assignment_shows_both_deadlines_in_lanling_time():
    inbox = next(m for m in planned("case_assigned") if m.channel == "inbox")
    body = render(inbox.template, inbox.context).body
    assert "签收时限:2026-12-01 14:00前" in body and "办理时限:2026-12-16 10:00前" in body


def test_an_urgent_alert_without_a_named_signal_still_wakes_the_duty_staff():
    data = {**payloads(CASE_NO, NOW)["case_urgent"], "signals": [], "township": None}
    messages = planned("case_urgent", data, known=inputs.Known())
    assert {m.recipient.id for m in messages} == {COUNTY_SUPERVISOR["id"]}
    sms = next(m for m in messages if m.channel == "sms")
    assert "紧急情况" in render(sms.template, sms.context).body


def test_supervision_without_a_known_unit_still_reaches_the_supervisor():
    data = {**payloads(CASE_NO, NOW)["supervision_opened"], "unit": None}
    messages = planned("supervision_opened", data, known=inputs.Known())
    assert {(m.audience, m.recipient.id) for m in messages} == {("supervisor", SUPERVISOR["id"])}
