"""Sending on a real database, without a broker: backoff, giving up, stale claims, opt-out at send time.

The channel here is a stand-in for the outside world (an SMS gateway answering as told).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from services.common.clock import ManualClock
from services.common.db import Database
from services.contracts.envelope import load_event
from services.notify import handlers
from services.notify.channels import Outcome, SendResult
from services.notify.models import Base, Delivery, DeliveryAttempt, OptOut
from tests.conftest import Databases, using_postgres
from tests.unit.notify.contract_events import MEDIATOR, payloads, wire

START = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)   # 10:00 in Lanling


class Gateway:
    """Answers each send with the next outcome it was given; remembers the keys it saw."""

    name = "sms"

    def __init__(self, *outcomes: Outcome):
        self.outcomes = list(outcomes)
        self.keys: list[str] = []

    def send(self, message):
        self.keys.append(message.idempotency_key)
        return SendResult.of(self.outcomes.pop(0), "as told")


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_RETRY_INITIAL_SECONDS", "10")
    monkeypatch.setenv("NOTIFY_RETRY_MAX_SECONDS", "60")
    monkeypatch.setenv("NOTIFY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("NOTIFY_CLAIM_SECONDS", "30")
    dbs = Databases(tmp_path, using_postgres(), services=("notify",))
    database = Database(dbs.urls["notify"], Base.metadata, "notify", ManualClock(START))
    database.create_all()
    yield database
    database.dispose()
    dbs.drop()


def planned_sms(db) -> int:
    """Plan a reminder to one mediator; returns the id of its SMS delivery."""
    case_no = "371324-20261201-000777"
    _, body = wire("reminder_due", payloads(case_no, START)["reminder_due"], case_no, START)
    with db.handling(load_event(body)) as uow:
        handlers.plan_deliveries(uow, load_event(body))
    with db.reading() as session:
        return session.scalar(select(Delivery.id).where(Delivery.channel == "sms",
                                                        Delivery.recipient_id == MEDIATOR["id"]))


def state(db, delivery_id):
    with db.reading() as session:
        row = session.get(Delivery, delivery_id)
        tries = [(a.number, a.outcome) for a in session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id).order_by(DeliveryAttempt.number))]
        return row.status, row.attempts, row.due_at, tries


def outcomes(db, event_type):
    with db.reading() as session:
        return [json.loads(r.body)["data"] for r in session.execute(
            select(db.outbox).where(db.outbox.c.routing_key == event_type))]


def test_transient_failures_back_off_then_the_delivery_fails_for_good_once(db):
    sms = planned_sms(db)
    gateway = Gateway(Outcome.TRANSIENT_FAILURE, Outcome.TRANSIENT_FAILURE, Outcome.TRANSIENT_FAILURE)
    channels = {"sms": gateway}

    handlers.send(db, channels, sms)
    status, attempts, due_at, _ = state(db, sms)
    assert (status, attempts) == ("pending", 1) and START + timedelta(seconds=10) <= due_at <= START + timedelta(seconds=20)
    handlers.send(db, channels, sms)                      # not due yet: nobody may take it
    assert state(db, sms)[1] == 1 and len(gateway.keys) == 1

    db.clock.set(due_at)
    handlers.send(db, channels, sms)
    status, attempts, second_due, _ = state(db, sms)
    assert (status, attempts) == ("pending", 2) and second_due - due_at >= timedelta(seconds=20)   # backing off

    db.clock.set(second_due)
    with db.reading() as session:
        assert sms in handlers.due_deliveries(session, db.clock.now())
    handlers.send(db, channels, sms)
    status, attempts, _, tries = state(db, sms)
    assert (status, attempts) == ("failed", 3)
    assert tries == [(1, "transient_failure"), (2, "transient_failure"), (3, "transient_failure")]
    assert len(set(gateway.keys)) == 1                     # every try carried the same key
    failed = outcomes(db, "notification_failed")
    assert [f["delivery_id"] for f in failed] == gateway.keys[:1] and failed[0]["attempts"] == 3
    handlers.send(db, channels, sms)                      # failed is final
    assert len(gateway.keys) == 3


def test_a_claim_taken_back_from_a_stalled_sender_cannot_overrule_its_successor(db):
    sms = planned_sms(db)
    stalled = handlers.claim(db, sms)                      # this sender hangs…
    assert handlers.claim(db, sms) is None                 # …and holds the delivery meanwhile
    db.clock.advance(timedelta(seconds=31))                # until its claim runs out
    successor = handlers.claim(db, sms)
    assert (stalled.attempt, successor.attempt) == (1, 2)
    assert stalled.message.idempotency_key == successor.message.idempotency_key

    handlers.record_outcome(db, stalled, SendResult.of(Outcome.PERMANENT_FAILURE, "late"))
    assert state(db, sms)[0] == "sending"                  # the stale failure is only logged as its try
    handlers.record_outcome(db, successor, SendResult.of(Outcome.SENT, "ok"))
    handlers.record_outcome(db, stalled, SendResult.of(Outcome.SENT, "ok after all"))
    status, attempts, _, tries = state(db, sms)
    assert (status, attempts) == ("sent", 2) and tries == [(1, "sent"), (2, "sent")]
    assert outcomes(db, "notification_failed") == []
    assert [o["delivery_id"] for o in outcomes(db, "notification_sent") if o["channel"] == "sms"] == [
        stalled.message.idempotency_key]                   # one outcome event per delivery


def test_an_opt_out_made_after_planning_stops_the_send(db):
    sms = planned_sms(db)
    with db.transaction() as uow:
        uow.session.add(OptOut(recipient_id=MEDIATOR["id"], channel="sms", created_at=uow.now))
    gateway = Gateway(Outcome.SENT)
    handlers.send(db, {"sms": gateway}, sms)
    status, attempts, _, tries = state(db, sms)
    assert (status, attempts, tries) == ("skipped", 0, []) and gateway.keys == []
