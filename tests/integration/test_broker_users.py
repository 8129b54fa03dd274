"""Broker users with least privilege: deploy/rabbitmq/definitions.json, imported into a fresh vhost
of the real broker through the management API, lets each service do its job and nothing else."""
from __future__ import annotations

import json
import uuid

import amqp
import pytest
import requests

from services.common import broker_users, config, topology
from services.common.broker import ConfirmedPublisher, Outgoing
from tests.harness import MANAGEMENT

DEFINITIONS = config.ROOT / "deploy" / "rabbitmq" / "definitions.json"
PASSWORD = "a-test-password-" + uuid.uuid4().hex[:8]
DELAYS = list(broker_users.DEFAULT_RETRY_DELAYS_MS)


def test_the_committed_definitions_are_the_generated_ones():
    assert DEFINITIONS.read_text(encoding="utf-8") == broker_users.render(), \
        "regenerate: python -m services.common.broker_users > deploy/rabbitmq/definitions.json"


@pytest.fixture(scope="module")
def broker():
    """The definitions imported into a fresh vhost, with users suffixed so they do not clash."""
    tag = uuid.uuid4().hex[:8]
    vhost, suffix = f"lanling_defs_{tag}", f"-{tag}"
    document = broker_users.definitions(vhost=vhost, suffix=suffix)
    response = requests.post(f"{MANAGEMENT}/api/definitions", json=document, timeout=60)
    assert response.status_code in (200, 201, 204), response.text
    users = [u["name"] for u in document["users"]]
    try:
        for name in users:  # the passwords are set at start from the environment, never in the file
            requests.put(f"{MANAGEMENT}/api/users/{name}", json={"password": PASSWORD, "tags": ""},
                         timeout=10).raise_for_status()
        requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/guest",
                     json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
        yield {"vhost": vhost, "suffix": suffix, "document": document}
    finally:
        requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", timeout=30)
        for name in users:
            requests.delete(f"{MANAGEMENT}/api/users/{name}", timeout=10)


def uri(broker, user: str | None) -> str:
    if user is None:
        return f"amqp://guest:guest@127.0.0.1:5672/{broker['vhost']}"
    return f"amqp://{user}{broker['suffix']}:{PASSWORD}@127.0.0.1:5672/{broker['vhost']}"


class As:
    """One broker user's connection: each attempt on a fresh channel, as a refusal closes it."""

    def __init__(self, broker, user: str):
        self.conn = amqp.Connection("127.0.0.1:5672", userid=f"{user}{broker['suffix']}", password=PASSWORD,
                                    virtual_host=broker["vhost"], connect_timeout=5)
        self.conn.connect()

    def close(self):
        self.conn.close()

    def attempt(self, action) -> str:
        channel = self.conn.channel()
        try:
            action(channel)
            if channel.is_open:
                channel.close()
            return "ok"
        except amqp.exceptions.AccessRefused:
            return "refused"

    def publish(self, exchange: str, routing_key: str) -> str:
        def send(channel):
            channel.confirm_select()
            channel.basic_publish_confirm(amqp.Message(b"{}", message_id=uuid.uuid4().hex), exchange=exchange,
                                          routing_key=routing_key, confirm_timeout=10)
        return self.attempt(send)

    def read(self, queue: str) -> str:
        return self.attempt(lambda channel: channel.basic_get(queue))

    def consume(self, queue: str) -> str:
        return self.attempt(lambda channel: channel.basic_consume(queue, callback=lambda m: None))

    def declare_queue(self, name: str, **kwargs) -> str:
        return self.attempt(lambda channel: channel.queue_declare(name, durable=True, **kwargs))

    def delete_queue(self, name: str) -> str:
        return self.attempt(lambda channel: channel.queue_delete(name))

    def bind(self, queue: str, exchange: str, routing_key: str) -> str:
        return self.attempt(lambda channel: channel.queue_bind(queue, exchange, routing_key))


@pytest.fixture
def as_user(broker):
    opened = []

    def connect(user: str) -> As:
        connection = As(broker, user)
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()


def depth(broker, queue: str) -> int:
    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest", virtual_host=broker["vhost"]) as conn:
        channel = conn.channel()
        return channel.queue_declare(queue, passive=True).message_count


def test_the_import_holds_the_whole_topology_and_no_password(broker):
    document = broker["document"]
    assert all(user["password_hash"] == "" for user in document["users"])
    vhost = broker["vhost"]
    queues = {q["name"] for q in requests.get(f"{MANAGEMENT}/api/queues/{vhost}", timeout=10).json()}
    assert {q.name for q in topology.all_queues(DELAYS)} <= queues
    assert len(queues) >= 50


@pytest.mark.parametrize("service", config.SERVICES)
def test_each_service_declares_its_own_part_and_checks_the_rest(broker, service):
    publisher = ConfirmedPublisher(uri(broker, broker_users.service_user(service)))
    try:
        publisher.declare_topology(DELAYS, service)
    finally:
        publisher.close()


def test_a_service_user_may_not_declare_the_whole_topology(broker):
    publisher = ConfirmedPublisher(uri(broker, broker_users.service_user("routing")))
    try:
        with pytest.raises(amqp.exceptions.AccessRefused):
            publisher.declare_topology(DELAYS)  # every part, as the admin's `lanling declare` does
    finally:
        publisher.close()


def test_routing_does_its_job(broker, as_user):
    routing = as_user(broker_users.service_user("routing"))
    before = depth(broker, "mediation.case_routed")
    # publish its own events, which reach their consumers' queues
    assert routing.publish("routing.events", "case_routed") == "ok"
    assert depth(broker, "mediation.case_routed") == before + 1
    # consume its own queues; retry and dead-letter through the retry exchanges and its dead exchange
    assert routing.read("routing.case_received") == "ok"
    assert routing.consume("routing.case_received") == "ok"
    assert routing.publish("lanling.retry.200", "routing.case_received") == "ok"
    dead = depth(broker, "routing.dead")
    assert routing.publish("routing.dead", "routing.dead") == "ok"
    assert depth(broker, "routing.dead") == dead + 1
    # nameko RPC: its own queue bound to its own methods, replies by uuid
    assert routing.declare_queue("rpc-routing") == "ok"
    assert routing.bind("rpc-routing", "nameko-rpc", "routing.*") == "ok"
    assert routing.publish("nameko-rpc", str(uuid.uuid4())) == "ok"


def test_routing_may_not_touch_what_is_not_its_own(broker, as_user):
    routing = as_user(broker_users.service_user("routing"))
    assert routing.read("mediation.case_routed") == "refused"          # another service's queue
    assert routing.consume("intake.case_routed") == "refused"
    assert routing.read("intake.ingress") == "refused"
    assert routing.read("psych.dead") == "refused"
    assert routing.publish("mediation.events", "case_assigned") == "refused"   # another's exchange
    assert routing.publish("intake.ingress", "hotline.submitted") == "refused"
    assert routing.publish("", "mediation.case_routed") == "refused"  # the default exchange reaches any queue
    assert routing.publish("lanling.requeue", "mediation.case_routed") == "refused"
    assert routing.publish("mediation.dead", "mediation.dead") == "refused"
    assert routing.publish("nameko-rpc", "mediation.act") == "refused"  # no RPC into another service
    assert routing.delete_queue("mediation.case_routed") == "refused"
    assert routing.declare_queue("mediation.something_new") == "refused"
    routing.declare_queue("rpc-routing")
    assert routing.bind("rpc-routing", "nameko-rpc", "mediation.*") == "refused"  # no eavesdropping on RPC
    # events of producers it does not consume from (those it does are broadcast to it anyway)
    others = [e.name for e in topology.all_exchanges(DELAYS) if e.name.endswith(".events")
              and e.name not in broker_users.consumed_exchanges("routing") and e.name != "routing.events"]
    assert others
    for exchange in others:
        assert routing.bind("routing.case_received", exchange, "#") == "refused", exchange
    assert depth(broker, "mediation.case_routed") >= 0  # still there


def test_the_gateway_calls_the_services_and_nothing_else(broker, as_user):
    gateway = as_user(broker_users.service_user("gateway"))
    for service in ("intake", "routing", "mediation", "psych", "notify"):
        assert gateway.publish("nameko-rpc", f"{service}.health") == "ok"
    assert gateway.publish("intake.events", "case_received") == "refused"
    assert gateway.read("intake.ingress") == "refused"
    assert gateway.read("mediation.dead") == "refused"


def test_a_source_system_submits_on_its_channel_only(broker, as_user):
    hotline = as_user(broker_users.source_user("hotline"))
    before = depth(broker, "intake.ingress")
    assert hotline.publish("intake.ingress", "hotline.submitted") == "ok"
    assert depth(broker, "intake.ingress") == before + 1
    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest", virtual_host=broker["vhost"]) as conn:
        conn.channel().queue_purge("intake.ingress")  # no intake runs here to answer it
    assert hotline.publish("intake.ingress", "petition.submitted") == "refused"
    assert hotline.read("intake.ingress") == "refused"
    assert hotline.publish("intake.events", "case_received") == "refused"
    own = f"ingress.{broker_users.source_user('hotline')}{broker['suffix']}.probe"
    assert hotline.declare_queue(own) == "ok"
    assert hotline.bind(own, "intake.ingress.results", f"{broker_users.source_user('hotline')}{broker['suffix']}.#") == "ok"
    assert hotline.bind(own, "intake.ingress.results", "source-petition.#") == "refused"  # another's results
    assert hotline.bind(own, "intake.egress", "hotline.#") == "ok"
    assert hotline.bind(own, "intake.egress", "petition.#") == "refused"


def test_intake_dead_letters_through_its_exchange(broker):
    publisher = ConfirmedPublisher(uri(broker, broker_users.service_user("intake")))
    before = depth(broker, topology.INGRESS_DEAD)
    try:
        publisher.publish([Outgoing(exchange=topology.dead_exchange(topology.INGRESS_DEAD).name,
                                    routing_key=topology.INGRESS_DEAD, body=json.dumps({}).encode(),
                                    message_id=uuid.uuid4().hex)])
    finally:
        publisher.close()
    assert depth(broker, topology.INGRESS_DEAD) == before + 1


def test_intake_and_the_gateway_run_as_their_own_users(broker, container_factory, service_config, databases):
    """The real services, each with its own broker user, declaring only their own part: an HTTP
    submission goes gateway -> intake over RPC and out on intake.events; an ingress message from a
    source system is accepted, and an invalid one is dead-lettered through intake's dead exchange."""
    from services.common.clock import SystemClock
    from services.common.db import Database
    from services.gateway.bootstrap import create_api_key
    from services.gateway.models import Base as GatewayBase
    from services.gateway.service import GatewayService
    from services.intake import admin, handlers
    from services.intake.models import Base as IntakeBase
    from services.intake.service import IntakeService
    from tests.integration.test_intake_ingress import INVALID, fresh, free_port, outside_system
    from tests.unit.intake.conftest import PLACES

    port = free_port()
    intake_db = Database(service_config["DATABASES"]["intake"], IntakeBase.metadata, "intake", SystemClock())
    intake_db.create_all()
    gateway_db = Database(service_config["DATABASES"]["gateway"], GatewayBase.metadata, "gateway", SystemClock())
    gateway_db.create_all()
    source = broker_users.source_user("hotline") + broker["suffix"]
    with intake_db.transaction() as uow:
        handlers.replace_places(uow.session, {"version": 1, "places": PLACES}, uow.now)
    admin.add_source_system(source, ["hotline"], db=intake_db)
    key = create_api_key("hotline-12345", ["hotline"], gateway_db)
    for service_cls in (IntakeService, GatewayService):
        conf = dict(service_config, AMQP_URI=uri(broker, broker_users.service_user(service_cls.name)),
                    BROKER_DECLARE="own", RETRY_DELAYS_MS=DELAYS, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
        container_factory(service_cls, conf).start()
    received = depth(broker, "routing.case_received")
    try:
        answer = requests.post(f"http://127.0.0.1:{port}/api/v1/submissions/hotline", json=fresh("hotline", "U"),
                               headers={"X-Api-Key": key}, timeout=15)
        assert answer.status_code == 202, answer.text

        from tests.harness import wait_until

        wait_until(lambda: depth(broker, "routing.case_received") > received, 30, what="case_received published")
        dead = depth(broker, topology.INGRESS_DEAD)
        messages = [{"channel": "hotline", "message_id": "ok", "body": fresh("hotline", "V")},
                    {"channel": "hotline", "message_id": "bad", "body": fresh("hotline", "W", **INVALID["hotline"][0])}]
        outcome = outside_system(uri(broker, "source-hotline"), source, messages)
        assert not outcome["refused"]
        # the same dispute as the HTTP one: merged into its case
        assert outcome["results"]["ok"]["routing_key"] in (f"{source}.hotline.accepted", f"{source}.hotline.merged")
        assert outcome["results"]["bad"]["routing_key"] == f"{source}.hotline.rejected"
        wait_until(lambda: depth(broker, topology.INGRESS_DEAD) > dead, 30, what="the invalid message dead-lettered")
        # the container healthcheck of docker-compose, as the service's own user
        import os
        import subprocess
        import sys

        check = subprocess.run([sys.executable, "-m", "services.common.healthcheck", "intake"], capture_output=True,
                               text=True, timeout=60, cwd=config.ROOT,
                               env=dict(os.environ, AMQP_URI=uri(broker, broker_users.service_user("intake"))))
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        intake_db.dispose()
        gateway_db.dispose()
