from __future__ import annotations

from collections import Counter

import pytest
import yaml

from services.notify.rules import RulesTable, StaticDirectory, default_table, plan
from services.notify.templates import TEMPLATES_DIR

from .conftest import (CASE_NO, COMPLAINANT, COUNTY_DUTY, MEDIATOR, MEDIATOR_2, NOW,
                       SUPERVISOR, TOWNSHIP_DUTY, sample_directory, sample_events)

# The issue's closed loop, written out independently of rules.yaml: who hears of what, where.
EXPECTED = {
    "case_received": {("citizen", "sms"), ("citizen", "app_push")},
    "case_merged": {("citizen", "sms")},
    "case_assigned": {("mediator", c) for c in ("inbox", "app_push", "sms")},
    "case_accepted": {("citizen", "sms"), ("citizen", "app_push")},
    "reminder_due": {("mediator", c) for c in ("inbox", "app_push", "sms")},
    "case_overdue": {("mediator", c) for c in ("inbox", "app_push", "sms")}
                    | {("supervisor", "inbox"), ("supervisor", "email")},
    "supervision_opened": {("unit", "inbox"), ("unit", "email"), ("supervisor", "inbox"), ("supervisor", "email")},
    "accountability_recorded": {("unit", "inbox"), ("unit", "email"), ("supervisor", "inbox"), ("supervisor", "email")},
    "case_resolved": {("citizen", "sms"), ("citizen", "app_push")},
    "evaluation_requested": {("citizen", "sms"), ("citizen", "app_push")},
    "case_evaluated": {("mediator", "inbox")},
    "extension_requested": {("supervisor", "inbox"), ("supervisor", "email")},
    "extension_decided": {("mediator", "inbox"), ("mediator", "app_push")},
    "case_closed": {("citizen", "sms"), ("citizen", "app_push")},
    "counsellor_offered": {("counsellor", c) for c in ("inbox", "app_push", "sms")},
    "counsellor_assigned": {("mediator", "inbox"), ("mediator", "app_push")},
    "psych_unmatched": {("psych_coordinator", c) for c in ("inbox", "email", "sms")},
    "case_urgent": {(a, c) for a in ("township_on_duty", "county_on_duty") for c in ("sms", "app_push", "inbox")},
}


def test_every_event_of_the_issue_has_rules_and_a_sample():
    assert set(default_table().events) == set(EXPECTED) == set(sample_events())


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_each_event_reaches_its_audiences_on_their_channels(event_type, events, directory):
    messages = plan(event_type, events[event_type], directory, now=NOW)
    assert {(m.audience, m.channel) for m in messages} == EXPECTED[event_type]


def test_every_rule_has_its_template_and_every_template_a_rule():
    on_disk = {str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*.j2") if not p.name.startswith("_")}
    assert default_table().templates() == on_disk


def test_delivery_keys_are_deterministic_and_unique(events, directory):
    for event_type, data in events.items():
        first = plan(event_type, data, directory, now=NOW)
        again = plan(event_type, dict(data), sample_directory(), now=NOW)
        keys = [m.delivery_key for m in first]
        assert keys == [m.delivery_key for m in again]
        assert len(set(keys)) == len(keys)
        for m in first:
            assert m.delivery_key == f"{data['event_id']}:{m.recipient.id}:{m.channel}"


def test_staff_keys_use_directory_ids_and_citizen_keys_carry_no_phone(events, directory):
    assigned = plan("case_assigned", events["case_assigned"], directory, now=NOW)
    assert {m.recipient.id for m in assigned} == {MEDIATOR["id"], MEDIATOR_2["id"]}
    received = plan("case_received", events["case_received"], directory, now=NOW)
    for m in received:
        assert m.recipient.id.startswith("citizen-")
        assert COMPLAINANT["phone"] not in m.delivery_key
    sms = next(m for m in received if m.channel == "sms")
    assert sms.recipient.contact == COMPLAINANT["phone"]
    assert sms.recipient.display == "王** 139****5678"


def test_the_same_citizen_gets_the_same_id_whatever_the_phone_format(events, directory):
    plain = plan("case_merged", {**events["case_merged"], "complainant": {"phone": "13698765432"}}, directory, now=NOW)
    spaced = plan("case_merged", events["case_merged"], directory, now=NOW)
    assert plain[0].recipient.id == spaced[0].recipient.id
    assert spaced[0].recipient.contact == "13698765432"


def test_a_merge_tells_only_the_new_complainant(events, directory):
    messages = plan("case_merged", events["case_merged"], directory, now=NOW)
    assert [m.recipient.contact for m in messages] == ["13698765432"]
    assert COMPLAINANT["phone"] not in {m.recipient.contact for m in messages}


def test_people_missing_from_the_event_come_from_the_directory(events):
    directory = StaticDirectory(assignees_by_case={CASE_NO: [MEDIATOR_2]},
                                supervisors_by_township={"卞庄街道": [SUPERVISOR]})
    messages = plan("case_overdue", events["case_overdue"], directory, now=NOW)
    assert {(m.audience, m.recipient.id) for m in messages} == {("mediator", MEDIATOR_2["id"]),
                                                                ("supervisor", SUPERVISOR["id"])}
    assert plan("case_accepted", events["case_accepted"], StaticDirectory(), now=NOW) == []


def test_urgent_alert_goes_to_township_and_county_duty(events, directory):
    messages = plan("case_urgent", events["case_urgent"], directory, now=NOW)
    assert {m.recipient.id for m in messages} == {TOWNSHIP_DUTY["id"], COUNTY_DUTY["id"]}
    assert all(m.urgent and m.legally_required for m in messages)
    county_case = {**events["case_urgent"], "township": None}
    assert {m.recipient.id for m in plan("case_urgent", county_case, directory, now=NOW)} == {COUNTY_DUTY["id"]}


def test_urgency_from_the_event(events, directory):
    offered = events["counsellor_offered"]
    assert all(m.urgent for m in plan("counsellor_offered", offered, directory, now=NOW))
    calm = {**offered, "priority": "normal"}
    assert not any(m.urgent for m in plan("counsellor_offered", calm, directory, now=NOW))
    assigned = {**events["case_assigned"], "urgent": True}
    assert all(m.urgent for m in plan("case_assigned", assigned, directory, now=NOW))
    assert not any(m.urgent for m in plan("case_assigned", events["case_assigned"], directory, now=NOW))


def test_legally_required_flags(events, directory):
    flags = {et: {m.legally_required for m in plan(et, data, directory, now=NOW)} for et, data in events.items()}
    assert flags["case_accepted"] == flags["case_resolved"] == flags["case_closed"] == {True}
    assert flags["case_received"] == flags["evaluation_requested"] == flags["reminder_due"] == {False}
    assert flags["supervision_opened"] == flags["accountability_recorded"] == flags["case_urgent"] == {True}


def test_one_person_in_two_audiences_gets_one_delivery_per_channel(events):
    both = {**SUPERVISOR}
    directory = StaticDirectory(supervisors_by_township={"卞庄街道": [both]})
    data = {**events["supervision_opened"], "units": [both], "supervisors": [both]}
    messages = plan("supervision_opened", data, directory, now=NOW)
    assert Counter(m.delivery_key for m in messages).most_common(1)[0][1] == 1
    assert {m.audience for m in messages} == {"unit"}   # the first audience listed wins


def test_a_person_without_a_contact_is_not_planned_on_that_channel(events, directory):
    messages = plan("case_assigned", events["case_assigned"], directory, now=NOW)
    assert {m.channel for m in messages if m.recipient.id == MEDIATOR["id"]} == {"inbox", "app_push", "sms"}
    assert {m.channel for m in messages if m.recipient.id == MEDIATOR_2["id"]} == {"inbox", "sms"}  # no app account


def test_missing_required_fields_are_named(events, directory):
    with pytest.raises(ValueError, match="assignees"):
        plan("case_assigned", {k: v for k, v in events["case_assigned"].items() if k != "assignees"}, directory, now=NOW)
    with pytest.raises(ValueError, match="event_id"):
        plan("case_closed", {k: v for k, v in events["case_closed"].items() if k != "event_id"}, directory, now=NOW)
    with pytest.raises(ValueError, match="offset"):
        plan("reminder_due", {**events["reminder_due"], "deadline": "2026-12-04T17:30:00"}, directory, now=NOW)


def test_events_without_rules_plan_nothing(directory):
    assert plan("directory_updated", {"event_id": "e"}, directory, now=NOW) == []


def test_deadlines_are_shown_in_lanling_time(events, directory):
    message = plan("case_assigned", events["case_assigned"], directory, now=NOW)[0]
    assert message.context["deadline"] == "2026-12-04 17:30"
    assert message.context["level"] == "乡镇" and message.context["mechanism"] == "超市点将"
    assert message.context["case_url"] == f"https://tj.lanling.gov.cn/console/cases/{CASE_NO}"


def test_free_text_stays_in_the_inbox(events, directory):
    by_channel = {m.channel: m for m in plan("case_overdue", events["case_overdue"], directory, now=NOW)}
    assert by_channel["inbox"].context["summary"].startswith("王小明反映")
    assert by_channel["sms"].context["summary"] is None
    assert by_channel["email"].context["summary"] is None


@pytest.mark.parametrize("broken, message", [
    ({"audience": "nobody", "channels": ["sms"]}, "unknown audience"),
    ({"audience": "citizen", "channels": ["fax"]}, "unknown channels"),
    ({"audience": "citizen", "channels": ["sms"], "urgent": "sometimes"}, "urgent must be"),
])
def test_a_broken_rules_file_is_refused(tmp_path, broken, message):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"audiences": {"citizen": {"description": "x", "from_event": "complainant",
                                                              "citizen": True}},
                                    "events": {"case_closed": {"rules": [broken]}}}, allow_unicode=True))
    with pytest.raises(ValueError, match=message):
        RulesTable.load(path)
