"""Notify on a real broker and database: every event of the loop, redelivery, quiet hours,
urgent bypass, opt-outs, the inbox and the delivery record; logs masked.

The producers are played by publishing their contract events to their exchanges, exactly as
their outboxes do. Time is a ManualClock; the outside channels are the local sinks.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import func, select

import services.common.rpc  # noqa: F401 - remote errors keep their type
from services.common.broker import ConfirmedPublisher, Outgoing
from services.common.clock import ManualClock
from services.common.db import AlreadyHandled, Database
from services.contracts.catalogue import spec
from services.contracts.errors import Invalid, NotFound
from services.notify import handlers
from services.notify.models import Base, Delivery, InboxMessage
from services.notify.service import NotifyService
from tests.conftest import Databases, using_postgres
from tests.unit.notify.contract_events import (COMPLAINANT, MEDIATOR, PHONES, STAFF, SUPERVISOR, TOWNSHIP_NAME,
                                               directory_snapshot, expected, payloads, wire)

LANLING_10AM = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
LANLING_11PM = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
NEXT_MORNING_8AM = datetime(2026, 12, 2, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def databases(tmp_path):
    """Only notify's database: a test here runs notify alone (six PostgreSQL databases cost seconds)."""
    dbs = Databases(tmp_path, using_postgres(), services=("notify",))
    yield dbs
    dbs.drop()


@pytest.fixture
def clock():
    return ManualClock(LANLING_10AM)


@pytest.fixture
def sinks(monkeypatch, tmp_path):
    for name in ("NOTIFY_SMS_URL", "NOTIFY_SMTP_HOST", "NOTIFY_PUSH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFY_SINK_DIR", str(tmp_path / "sinks"))
    monkeypatch.setenv("NOTIFY_QUIET_HOURS", "21:00-08:00")
    monkeypatch.setenv("NOTIFY_SWEEP_SECONDS", "0.1")
    monkeypatch.setenv("NOTIFY_RATING_URL", "https://ll.gov.cn/r/{token}")
    return tmp_path / "sinks"


@pytest.fixture
def notify(service_config, container_factory, clock, sinks):   # containers stop before the databases go
    conf = dict(service_config, CLOCK=clock)
    db = Database(conf["DATABASES"]["notify"], Base.metadata, "notify", clock)
    db.create_all()
    with db.transaction() as uow:
        handlers.seed_default_roster(uow.session, STAFF, uow.now)
    container = container_factory(NotifyService, conf)
    container.start()
    yield container, db
    db.dispose()


@pytest.fixture
def publish(service_config):
    publisher = ConfirmedPublisher(service_config["AMQP_URI"])

    def _publish(event_type, data=None, case_no=None, body=None, at=None):
        if body is None:
            event, body = wire(event_type, data, case_no, at)
            message_id = event.event_id
        else:
            message_id = json.loads(body)["event_id"]
        publisher.publish([Outgoing(exchange=f"{spec(event_type).producer}.events", routing_key=event_type, body=body,
                                    message_id=message_id, correlation_id=case_no)])
        return body

    yield _publish
    publisher.close()


def deliver(container, publish, event_type, data=None, case_no=None, body=None, at=None):
    """Publish one event and wait until notify has handled it (a redelivery counts as handled)."""
    outcome = {}

    def done(worker_ctx, result, exc_info):
        outcome["exc"] = exc_info and exc_info[1]
        return True

    with entrypoint_waiter(container, f"on_{event_type}", callback=done, timeout=20):
        body = publish(event_type, data, case_no, body, at)
    if outcome["exc"] is not None and not isinstance(outcome["exc"], AlreadyHandled):
        raise outcome["exc"]
    return body


def settle(container, db):
    """Wait until nothing due is unsent: the sweep may have taken a delivery the handler was about to send."""
    def idle(*_):
        with db.reading() as session:
            return not handlers.due_deliveries(session, db.clock.now()) and not session.scalar(
                select(func.count(Delivery.id)).where(Delivery.status == "sending"))

    if not idle():
        with entrypoint_waiter(container, "send_due", callback=idle, timeout=10):
            pass


def rows(db, **where):
    with db.reading() as session:
        found = list(session.scalars(select(Delivery).filter_by(**where).order_by(Delivery.id)))
        session.expunge_all()   # readable after the session closes
        return found


def sink_keys(sinks, channel):
    path = sinks / {"sms": "sms.jsonl", "email": "email.jsonl", "app_push": "push.jsonl"}[channel]
    return [json.loads(line)["idempotency_key"] for line in path.read_text().splitlines()] if path.exists() else []


def outbox_events(db, event_type):
    with db.reading() as session:
        return [json.loads(r.body) for r in session.execute(
            select(db.outbox).where(db.outbox.c.routing_key == event_type))]


def test_every_event_of_the_loop_reaches_its_people_once_on_their_channels(notify, publish, sinks, caplog):
    container, db = notify
    caplog.set_level(logging.INFO)
    case_no = "371324-20261201-000001"
    deliver(container, publish, "directory_updated", directory_snapshot())
    for event_type, data in payloads(case_no, LANLING_10AM).items():
        deliver(container, publish, event_type, data, case_no)
    settle(container, db)

    deliveries = rows(db, case_no=case_no)
    by_event: dict[str, set] = {}
    for d in deliveries:
        who = "citizen" if d.audience == "citizen" else d.recipient_id
        by_event.setdefault(d.event_type, set()).add((d.audience, who, d.channel))
    for event_type in payloads(case_no):
        assert by_event.get(event_type) == expected(event_type), event_type
    assert {d.status for d in deliveries} == {"sent"}
    assert all(d.attempts == 1 for d in deliveries)

    # one record, one send, one outcome event per delivery
    for channel in ("sms", "email", "app_push"):
        keys = sink_keys(sinks, channel)
        assert sorted(keys) == sorted(d.key for d in deliveries if d.channel == channel)
    sent_events = Counter(e["data"]["delivery_id"] for e in outbox_events(db, "notification_sent"))
    assert set(sent_events) == {d.key for d in deliveries} and set(sent_events.values()) == {1}
    with db.reading() as session:
        inbox = list(session.scalars(select(InboxMessage)))
        session.expunge_all()
    assert len(inbox) == len([d for d in deliveries if d.channel == "inbox"])
    assert any(TOWNSHIP_NAME in m.body for m in inbox)

    # masked everywhere it is shown: the history event, the delivery record, the logs
    for d in deliveries:
        assert not any(phone in d.recipient_display for phone in PHONES)
    history = json.dumps(outbox_events(db, "notification_sent"), ensure_ascii=False)
    assert not any(phone in history for phone in PHONES) and COMPLAINANT["name"] not in history
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "139" in logged or "138****5678" in logged   # the sends were logged…
    assert not any(phone in logged for phone in PHONES)  # …without a phone number in clear


def test_a_redelivered_event_plans_and_sends_nothing_new(notify, publish, sinks):
    container, db = notify
    case_no = "371324-20261201-000002"
    body = deliver(container, publish, "case_assigned", payloads(case_no, LANLING_10AM)["case_assigned"], case_no)
    settle(container, db)
    first = [(d.key, d.status, d.attempts) for d in rows(db, case_no=case_no)]
    deliver(container, publish, "case_assigned", case_no=case_no, body=body)
    deliver(container, publish, "case_assigned", case_no=case_no, body=body)
    assert [(d.key, d.status, d.attempts) for d in rows(db, case_no=case_no)] == first
    assert len(first) == 6
    assert Counter(sink_keys(sinks, "sms")).most_common(1)[0][1] == 1


def test_quiet_hours_hold_sms_until_morning_and_urgent_alerts_go_at_once(notify, publish, clock):
    container, db = notify
    case_no = "371324-20261201-000003"
    clock.set(LANLING_11PM)
    data = payloads(case_no, LANLING_11PM)
    deliver(container, publish, "case_received", data["case_received"], case_no)
    deliver(container, publish, "case_urgent", data["case_urgent"], case_no)
    settle(container, db)

    held = rows(db, case_no=case_no, event_type="case_received", channel="sms")[0]
    assert (held.status, held.reason, held.due_at) == ("pending", "quiet_hours", NEXT_MORNING_8AM)
    assert rows(db, case_no=case_no, event_type="case_received", channel="app_push")[0].status == "sent"
    urgent_sms = rows(db, case_no=case_no, event_type="case_urgent", channel="sms")
    assert urgent_sms and {d.status for d in urgent_sms} == {"sent"}

    def sms_sent(worker_ctx, result, exc_info):
        return rows(db, id=held.id)[0].status == "sent"

    with entrypoint_waiter(container, "send_due", callback=sms_sent, timeout=10):
        clock.set(NEXT_MORNING_8AM + timedelta(seconds=1))
    assert rows(db, id=held.id)[0].sent_at == NEXT_MORNING_8AM + timedelta(seconds=1)


def test_opt_outs_are_respected_except_for_legally_required_notices(notify, publish, service_config):
    container, db = notify
    case_no = "371324-20261201-000004"
    data = payloads(case_no, LANLING_10AM)
    deliver(container, publish, "case_received", data["case_received"], case_no)
    with ServiceRpcProxy("notify", service_config) as rpc:
        with pytest.raises(NotFound):
            rpc.citizen_opt_out(case_no, "13900000000", "*")
        with pytest.raises(Invalid):
            rpc.citizen_opt_out(case_no, COMPLAINANT["phone"], ["fax"])
        answer = rpc.citizen_opt_out(case_no, "138-1234-5678", "*")
        assert answer == {"recipient": "138****5678", "opted_out": ["app_push", "email", "sms"]}
        assert rpc.staff_opt_out([MEDIATOR["id"]], "张建国", ["sms"])["opted_out"] == ["sms"]

    deliver(container, publish, "evaluation_requested", data["evaluation_requested"], case_no)
    deliver(container, publish, "case_closed", data["case_closed"], case_no)
    deliver(container, publish, "reminder_due", data["reminder_due"], case_no)
    deliver(container, publish, "accountability_recorded", data["accountability_recorded"], case_no)
    settle(container, db)
    status = {(d.event_type, d.channel): (d.status, d.reason) for d in rows(db, case_no=case_no)}
    assert status[("evaluation_requested", "sms")] == status[("evaluation_requested", "app_push")] == (
        "skipped", "opted_out")
    assert status[("case_closed", "sms")] == status[("case_closed", "app_push")] == ("sent", None)   # 办结告知
    assert status[("reminder_due", "sms")] == ("skipped", "opted_out")
    assert status[("reminder_due", "inbox")] == status[("reminder_due", "app_push")] == ("sent", None)
    assert status[("accountability_recorded", "inbox")] == ("sent", None)   # 问责 is a duty notice

    with ServiceRpcProxy("notify", service_config) as rpc:
        assert rpc.citizen_opt_out(case_no, COMPLAINANT["phone"], ["sms"], False)["opted_out"] == ["app_push", "email"]


def test_the_inbox_pages_and_marks_read_and_the_record_shows_what_went_to_whom(notify, publish, service_config):
    container, db = notify
    case_no = "371324-20261201-000005"
    data = payloads(case_no, LANLING_10AM)
    for event_type in ("case_received", "case_assigned", "reminder_due", "case_overdue"):
        deliver(container, publish, event_type, data[event_type], case_no)
    settle(container, db)
    owners = [MEDIATOR["id"], "mt-001-1"]
    with ServiceRpcProxy("notify", service_config) as rpc:
        page = rpc.inbox(owners, page=1, per_page=2)
        assert (page["total"], page["unread"], len(page["items"])) == (3, 3, 2)
        assert page["items"][0]["subject"].startswith("超期提醒") and page["items"][0]["created_at"].endswith("+08:00")
        assert rpc.inbox(owners, page=2, per_page=2)["items"][0]["subject"].startswith("新案件待签收")
        assert rpc.mark_read(owners, [page["items"][0]["id"]]) == {"marked": 1}
        assert rpc.mark_read([SUPERVISOR["id"]], [page["items"][1]["id"]]) == {"marked": 0}   # not theirs
        assert rpc.inbox(owners, unread_only=True)["total"] == 2
        assert rpc.mark_read(owners) == {"marked": 2}
        with pytest.raises(Invalid):
            rpc.inbox(owners, per_page=1000)

        record = rpc.case_deliveries(case_no)
    assert len(record) == len(rows(db, case_no=case_no))
    sms = next(d for d in record if d["event_type"] == "case_received" and d["channel"] == "sms")
    assert sms["recipient"] == "王** 138****5678" and sms["status"] == "sent"
    assert sms["tries"][0]["outcome"] == "sent" and sms["attempts"] == 1
    assert not any(phone in json.dumps(record, ensure_ascii=False) for phone in PHONES)


def test_the_duty_roster_decides_who_is_woken(notify, publish, service_config, clock):
    container, db = notify
    case_no = "371324-20261201-000006"
    with ServiceRpcProxy("notify", service_config) as rpc:
        shift = rpc.add_duty({"role": "on_duty", "township": "371324-001", "staff_id": "duty-wang", "name": "王强",
                              "phone": "137 0539 4001", "starts_at": (LANLING_10AM - timedelta(hours=1)).isoformat(),
                              "ends_at": (LANLING_10AM + timedelta(hours=12)).isoformat()}, "supervisor-1")
        assert shift["phone"] == "137****4001" and shift["source"] == "manual"
        with pytest.raises(Invalid) as bad:
            rpc.add_duty({"role": "on_duty", "staff_id": "x", "phone": "12", "starts_at": "2026-12-01T10:00:00"},
                         "supervisor-1")
        assert set(bad.value.fields) == {"phone", "starts_at"}
        roster = rpc.duty_roster(township="371324-001", role="on_duty")["entries"]
        assert {(e["staff_id"], e["active"]) for e in roster} == {("duty-wang", True), (SUPERVISOR["id"], False),
                                                                   ("SUP-COUNTY-1", True)}
    deliver(container, publish, "case_urgent", payloads(case_no, LANLING_10AM)["case_urgent"], case_no)
    woken = {(d.audience, d.recipient_id) for d in rows(db, case_no=case_no)}
    assert woken == {("township_on_duty", "duty-wang"), ("county_on_duty", "SUP-COUNTY-1")}
    with ServiceRpcProxy("notify", service_config) as rpc:
        with pytest.raises(NotFound):
            rpc.remove_duty(shift["id"], township_scope="371324-002")
        rpc.remove_duty(shift["id"], township_scope="371324-001")
        assert "duty-wang" not in {e["staff_id"] for e in rpc.duty_roster()["entries"]}


def test_a_newer_directory_snapshot_renames_places_and_an_older_one_is_ignored(notify, publish):
    container, db = notify
    snapshot = directory_snapshot(version=5)
    deliver(container, publish, "directory_updated", snapshot)
    renamed = directory_snapshot(version=4)
    renamed["places"]["townships"][0]["name"] = "旧名"
    deliver(container, publish, "directory_updated", renamed)
    with db.reading() as session:
        assert handlers.place_names(session)("371324-001") == TOWNSHIP_NAME
    staffed = directory_snapshot(version=6)
    staffed["places"]["staff"] = [{"id": "SUP-NEW", "role": "county_supervisor", "name": "新主任"}]
    deliver(container, publish, "directory_updated", staffed)
    with db.reading() as session:
        county = handlers.roster_entries(session, "on_duty", None)
    assert [e.staff_id for e in county] == ["SUP-NEW"]
    with db.reading() as session:
        assert session.scalar(select(func.count(Delivery.id))) == 0
