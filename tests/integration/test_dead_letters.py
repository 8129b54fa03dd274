"""Poison messages and unroutable events on a real broker (issue 8, part 2).

A handler that fails every retry parks the message in `<service>.dead` with the reason;
after the fix, `lanling dlq list` shows it and `lanling dlq replay` sends it back, and its
effect happens exactly once. An event that no queue would receive is refused by the broker
(mandatory publish, `basic.return`) and its outbox row stays unpublished, loudly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import select

from services.common.broker import ConfirmedPublisher, Outgoing, PublishError
from services.common.clock import SystemClock
from services.common.dependencies import DatabaseProvider
from services.common.messaging import handle
from services.common.outbox import OutboxRelay
from services.common.topology import event_exchange
from tests.harness import wait_until
from tests.integration.test_messaging import ConsumerBase, Effect, ToyProducer, case_received, effects
from tests.integration.test_messaging import dbs  # noqa: F401 - the fixture

LANLING = str(Path(sys.executable).parent / "lanling")


class Fault:
    """The bug in the handler: on until the fix is deployed."""
    broken = True


class FlakyConsumer:
    name = "routing"
    db = DatabaseProvider(ConsumerBase.metadata)

    @handle("case_received")
    def on_case_received(self, event):
        if Fault.broken:
            raise KeyError("township")  # reads a field that is not there: fails on every retry
        with self.db.handling(event) as uow:
            uow.session.add(Effect(case_no=event.correlation_id))


def lanling(amqp_uri: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LANLING, *args], env={**os.environ, "AMQP_URI": amqp_uri}, capture_output=True,
                          text=True, timeout=60, check=True)


def dead_letters(amqp_uri: str, queue: str) -> list[dict]:
    out = lanling(amqp_uri, "dlq", "list", "--queue", queue).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_poison_message_is_dead_lettered_with_its_reason_and_replayed_once_after_the_fix(
        container_factory, service_config, dbs, monkeypatch):  # noqa: F811
    producer_db, consumer_db = dbs
    uri = service_config["AMQP_URI"]
    monkeypatch.setattr(Fault, "broken", True)
    consumer = container_factory(FlakyConsumer, service_config)
    consumer.start()
    container_factory(ToyProducer, service_config).start()

    # the first try and both retries fail: 3 failed workers, then the message is parked
    failed = []
    with entrypoint_waiter(consumer, "on_case_received", timeout=30,
                           callback=lambda ctx, res, exc: failed.append(exc) or len(failed) >= 3):
        with producer_db.transaction() as uow:
            uow.emit("case_received", case_received("Q1"), correlation_id="Q1")
    assert all(exc is not None for exc in failed)
    parked = wait_until(lambda: dead_letters(uri, "routing.dead"), 20, what="a dead letter in routing.dead")
    assert len(parked) == 1
    assert parked[0]["reason"] == "KeyError: 'township'"
    assert parked[0]["original_queue"] == "routing.case_received"
    assert parked[0]["retries"] == 2 and "Q1" in parked[0]["body"]
    assert effects(consumer_db) == []
    # listing does not consume: the letter is still there
    assert len(dead_letters(uri, "routing.dead")) == 1

    monkeypatch.setattr(Fault, "broken", False)  # the fix is deployed
    with entrypoint_waiter(consumer, "on_case_received", timeout=30):
        out = lanling(uri, "dlq", "replay", "--queue", "routing.dead")
    assert "replayed 1 message(s)" in out.stdout + out.stderr
    assert effects(consumer_db) == ["Q1"]
    assert dead_letters(uri, "routing.dead") == []

    # a second replay finds nothing, and a duplicate delivery of the same event changes nothing
    out = lanling(uri, "dlq", "replay", "--queue", "routing.dead")
    assert "replayed 0 message(s)" in out.stdout + out.stderr
    with producer_db.reading() as session:
        row = session.execute(select(producer_db.outbox)).one()
    publisher = ConfirmedPublisher(uri)
    try:
        with entrypoint_waiter(consumer, "on_case_received", timeout=30):
            publisher.publish([OutboxRelay._outgoing(row)])
    finally:
        publisher.close()
    assert effects(consumer_db) == ["Q1"]


def test_an_event_no_queue_would_receive_fails_loudly_and_stays_in_the_outbox(dbs, service_config):  # noqa: F811
    producer_db, _ = dbs
    uri = service_config["AMQP_URI"]
    publisher = ConfirmedPublisher(uri)
    publisher.declare_topology([50, 100])
    try:
        # straight to the broker: a routing key no queue is bound to comes back as basic.return
        with pytest.raises(PublishError) as raised:
            publisher.publish([Outgoing(exchange=event_exchange("intake").name, routing_key="case_vanished",
                                        body=b"{}", message_id="m-unroutable")])
        assert "unroutable" in raised.value.failed["m-unroutable"]

        # through the outbox: the row is not marked published, its attempt and error are recorded
        with producer_db.transaction() as uow:
            uow.emit("case_received", case_received("U1"), correlation_id="U1")
        with producer_db.engine.begin() as conn:
            conn.execute(producer_db.outbox.update().values(routing_key="case_vanished"))
        relay = OutboxRelay(producer_db.engine, producer_db.outbox, publisher, SystemClock())
        with pytest.raises(PublishError):
            relay.drain()
        with producer_db.reading() as session:
            row = session.execute(select(producer_db.outbox)).one()
        assert row.published_at is None and row.attempts == 1 and "unroutable" in row.last_error
        assert relay.stats()["outbox_pending"] == 1
    finally:
        publisher.close()


def test_every_event_of_the_catalogue_has_a_queue_before_anything_is_published(service_config):
    """By construction: the topology is declared from the catalogue, so every (producer, event)
    pair routes to each consumer's queue; a mandatory publish of each is confirmed, none returned."""
    from services.contracts.catalogue import CATALOGUE

    publisher = ConfirmedPublisher(service_config["AMQP_URI"])
    publisher.declare_topology([50, 100])
    try:
        publisher.publish([
            Outgoing(exchange=event_exchange(spec.producer).name, routing_key=spec.name, body=b"{}",
                     message_id=f"probe-{spec.name}")
            for spec in CATALOGUE
        ])
    finally:
        publisher.close()
