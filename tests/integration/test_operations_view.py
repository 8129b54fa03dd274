"""The operations view on a real broker (issue 8, part 5): the gateway's GET /metrics and
GET /api/v1/health show each service's queue depths, dead letters, redeliveries and the age
of its oldest unprocessed message, and the figures move with what happens on the broker."""
from __future__ import annotations

import socket

import pytest
import requests
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from services.common import operations
from services.common.broker import ConfirmedPublisher
from services.common.clock import SystemClock
from services.common.db import Database
from services.common.outbox import OutboxRelay
from services.gateway.models import Base as GatewayBase
from services.gateway.service import GatewayService
from tests.harness import wait_until
from tests.integration.test_dead_letters import Fault, FlakyConsumer
from tests.integration.test_messaging import case_received
from tests.integration.test_messaging import dbs  # noqa: F401 - the fixture


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway(container_factory, service_config):
    port = free_port()
    # the other services are absent here: their health calls give up quickly
    conf = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", RPC_TIMEOUT=0.3)
    db = Database(conf["DATABASES"]["gateway"], GatewayBase.metadata, "gateway", SystemClock())
    db.create_all()
    container_factory(GatewayService, conf).start()
    yield f"http://127.0.0.1:{port}"
    db.dispose()


def metrics(base_url) -> dict:
    response = requests.get(base_url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = sample.labels.get("queue") or sample.labels.get("service") or ""
            values[(sample.name, key)] = sample.value
    return values


def emit(producer_db, publisher, case_nos):
    for case_no in case_nos:
        with producer_db.transaction() as uow:
            uow.emit("case_received", case_received(case_no), correlation_id=case_no)
    OutboxRelay(producer_db.engine, producer_db.outbox, publisher, SystemClock()).drain()


def test_depths_dead_letters_redeliveries_and_ages_move_with_the_broker(
        container_factory, service_config, dbs, gateway, monkeypatch):  # noqa: F811
    producer_db, _ = dbs
    uri = service_config["AMQP_URI"]
    publisher = ConfirmedPublisher(uri)
    publisher.declare_topology([50, 100])
    try:
        before = metrics(gateway)
        assert before[("lanling_broker_management_up", "")] == 1
        assert before[("lanling_queue_messages", "routing.case_received")] == 0
        assert before[("lanling_service_dead_letters", "routing")] == 0

        # one poison message: routing's handler fails on every retry, then it is parked
        monkeypatch.setattr(Fault, "broken", True)
        consumer = container_factory(FlakyConsumer, service_config)
        consumer.start()
        emit(producer_db, publisher, ["M0"])
        wait_until(lambda: metrics(gateway)[("lanling_service_dead_letters", "routing")] == 1, 30,
                   what="routing's dead-letter count to be 1")
        consumer.stop()

        # N events nobody consumes yet: routing's queue holds N, and its oldest one ages
        n = 7
        emit(producer_db, publisher, [f"M{i}" for i in range(1, n + 1)])
        seen = wait_until(lambda: (lambda m: m if m[("lanling_queue_messages", "routing.case_received")] == n
                                   and m[("lanling_queue_oldest_message_age_seconds", "routing.case_received")] >= 1
                                   else None)(metrics(gateway)), 30, what=f"routing.case_received at {n}, aged")
        assert seen[("lanling_service_queue_messages", "routing")] == n
        assert seen[("lanling_service_oldest_unprocessed_age_seconds", "routing")] >= 1
        assert seen[("lanling_queue_messages", "mediation.case_received")] == n + 1  # nobody consumed them
        assert seen[("lanling_service_dead_letters", "routing")] == 1

        # a consumer takes one and dies without acking: the broker delivers it again
        with Connection(uri) as conn:
            channel = conn.channel()
            assert channel.basic_get("routing.case_received", no_ack=False) is not None
            channel.close()
            channel = conn.channel()
            again = channel.basic_get("routing.case_received", no_ack=False)
            assert again is not None and again.delivery_info["redelivered"]
            channel.close()
        redelivered = wait_until(lambda: (lambda m: m if m[("lanling_service_redeliveries", "routing")] >= 1
                                          else None)(metrics(gateway)), 30, what="a redelivery counted")
        assert redelivered[("lanling_queue_redeliveries", "routing.case_received")] >= 1

        health = requests.get(gateway + "/api/v1/health", timeout=30).json()
        assert health["queues"]["routing"]["messages"] == n
        assert health["queues"]["routing"]["dead_letters"] == 1
        assert health["queues"]["routing"]["redeliveries"] >= 1
        assert health["queues"]["routing"]["oldest_unprocessed_age_s"] >= 1
    finally:
        publisher.close()


def test_the_outbox_backlog_counts_as_unprocessed(dbs):  # noqa: F811
    producer_db, _ = dbs
    with producer_db.transaction() as uow:
        uow.emit("case_received", case_received("O1"), correlation_id="O1")
    relay = OutboxRelay(producer_db.engine, producer_db.outbox, None, SystemClock())
    outbox = relay.stats()
    assert outbox["outbox_pending"] == 1
    summary = operations.by_service([], {"intake": outbox})
    assert summary["intake"]["outbox_pending"] == 1
    assert summary["intake"]["oldest_unprocessed_age_s"] == outbox["outbox_oldest_age_s"]
