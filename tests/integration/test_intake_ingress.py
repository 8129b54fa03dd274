"""Intake's two ways in on a real broker and database: the gateway's HTTP door and the AMQP
ingress, used by outside systems (a separate process with pika, one broker user each),
with per-source authorization, results, dead letters and feedback on intake.egress."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import pytest
import requests
from kombu import Consumer, Exchange, Producer, Queue
from nameko.standalone.rpc import ServiceRpcProxy

from services.common.clock import SystemClock
from services.common.db import Database
from services.contracts.envelope import new_event
from services.gateway.bootstrap import create_api_key
from services.gateway.models import Base as GatewayBase
from services.gateway.service import GatewayService
from services.intake import admin, handlers
from services.intake.models import Base as IntakeBase
from services.intake.service import IntakeService
from tests.unit.intake.conftest import PLACES
from tests.unit.intake.test_submissions import INVALID, valid

CHANNELS = ("hotline", "petition", "opinion", "app", "grid", "walkin")
REFERENCE = {"hotline": "order_no", "petition": "petition_no", "opinion": "lead_id", "app": "post_id",
             "grid": "report_no", "walkin": "visit_no"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh(channel: str, suffix: str, **changes) -> dict:
    """The unit tests' valid body, dated now, with its own reference."""
    now = datetime.now(timezone.utc).isoformat()
    times = {"hotline": "received_at", "petition": "received_at", "opinion": "published_at"}
    body = valid(channel)
    if channel in times:
        body[times[channel]] = now
    body[REFERENCE[channel]] = f"{body[REFERENCE[channel]]}-{suffix}"
    return {**body, **changes}


class Broker:
    """Broker users of outside systems in the test's vhost (management API), least privilege."""

    def __init__(self, manager, config):
        self.manager, self.config, self.users = manager, config, []

    def user(self, name: str) -> str:
        password = uuid.uuid4().hex
        self.manager._put("users", name, json={"password": password, "tags": ""})
        allowed = admin.broker_permissions(name)
        self.manager.set_vhost_permissions(self.config["vhost"], name, allowed["configure"], allowed["read"],
                                           allowed["write"])
        self.users.append(name)
        return f"amqp://{name}:{password}@127.0.0.1:5672/{self.config['vhost']}"

    def cleanup(self):
        for name in self.users:
            self.manager._delete("users", name)


def outside_system(uri: str, user: str, messages: list[dict], timeout: float = 30) -> dict:
    """Publish as the system would, from another process; returns its results and refusals."""
    run = subprocess.run([sys.executable, "-m", "tests.integration.outside_system", uri],
                         input=json.dumps({"user": user, "messages": messages, "timeout": timeout}),
                         capture_output=True, text=True, timeout=timeout + 30, check=True)
    return json.loads(run.stdout)


def drain(amqp, queue: str, count: int, timeout: float = 15) -> list:
    got = []
    with amqp.channel() as channel:
        with Consumer(channel, queues=[Queue(queue, durable=True, no_declare=True)], on_message=got.append,
                      no_ack=True):
            while len(got) < count:
                amqp.drain_events(timeout=timeout)
    return got


@pytest.fixture
def system(container_factory, service_config, rabbit_manager, rabbit_config):
    port = free_port()
    conf = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    intake_db = Database(conf["DATABASES"]["intake"], IntakeBase.metadata, "intake", SystemClock())
    intake_db.create_all()
    gateway_db = Database(conf["DATABASES"]["gateway"], GatewayBase.metadata, "gateway", SystemClock())
    gateway_db.create_all()
    with intake_db.transaction() as uow:
        handlers.replace_places(uow.session, {"version": 1, "places": PLACES}, uow.now)
    admin.add_source_system("county-all", list(CHANNELS), db=intake_db)
    admin.add_source_system("hotline-12345", ["hotline"], db=intake_db)
    keys = {"all": create_api_key("county-all", list(CHANNELS), gateway_db),
            "hotline": create_api_key("hotline-12345", ["hotline"], gateway_db)}
    for service in (IntakeService, GatewayService):
        container_factory(service, conf).start()
    broker = Broker(rabbit_manager, rabbit_config)
    yield {"url": f"http://127.0.0.1:{port}/api/v1", "keys": keys, "broker": broker, "config": conf,
           "intake_db": intake_db}
    broker.cleanup()
    intake_db.dispose()
    gateway_db.dispose()


def post(system, path, body, key="all", **kwargs):
    headers = {"X-Api-Key": system["keys"][key]} if key else {}
    return requests.post(system["url"] + path, json=body, headers=headers, timeout=15, **kwargs)


def test_every_channel_both_ways_valid_and_invalid_with_one_behaviour(system, amqp):
    http_answers, http_errors = {}, {}
    for channel in CHANNELS:
        response = post(system, f"/submissions/{channel}", fresh(channel, "H"))
        assert response.status_code == 202, response.text
        http_answers[channel] = response.json()
        changes, fields = INVALID[channel]
        bad = post(system, f"/submissions/{channel}", fresh(channel, "HX", **changes))
        assert bad.status_code == 400 and bad.json()["error"] == "invalid"
        assert fields <= set(bad.json()["fields"])
        http_errors[channel] = bad.json()

    uri = system["broker"].user("county-all")
    messages = [{"channel": c, "message_id": f"{c}-ok", "body": fresh(c, "A")} for c in CHANNELS]
    messages += [{"channel": c, "message_id": f"{c}-bad", "body": fresh(c, "AX", **INVALID[c][0])} for c in CHANNELS]
    outcome = outside_system(uri, "county-all", messages)
    assert not outcome["refused"]
    results = outcome["results"]
    for channel in CHANNELS:
        ok = results[f"{channel}-ok"]
        # the same dispute again, the other way in: merged into the case HTTP opened
        assert ok["routing_key"] == f"county-all.{channel}.merged", ok
        assert ok["body"]["case_no"] == http_answers[channel]["case_no"] == ok["body"]["merged_into"]
        assert ok["body"]["reference"] == f"{valid(channel)[REFERENCE[channel]]}-A"
        bad = results[f"{channel}-bad"]
        assert bad["routing_key"] == f"county-all.{channel}.rejected" and bad["body"]["case_no"] is None
        assert bad["body"]["error"]["fields"] == http_errors[channel]["fields"]
    dead = drain(amqp, "intake.ingress.dead", len(CHANNELS))
    assert {m.properties["message_id"] for m in dead} == {f"{c}-bad" for c in CHANNELS}
    assert all(m.headers["x-reason"].startswith("invalid: ") for m in dead)
    assert all(m.headers["x-original-user-id"] == "county-all" for m in dead)


def test_each_source_may_submit_only_on_its_own_channels(system, amqp):
    assert post(system, "/submissions/petition", fresh("petition", "P"), key="hotline").status_code == 403
    assert post(system, "/submissions/hotline", fresh("hotline", "N"), key=None).status_code == 401
    assert requests.post(system["url"] + "/submissions/hotline", json=fresh("hotline", "B"),
                         headers={"X-Api-Key": "ll_not-a-key"}, timeout=15).status_code == 401

    hotline_uri = system["broker"].user("hotline-12345")
    stranger_uri = system["broker"].user("stranger")
    system["broker"].user("county-all")
    own = outside_system(hotline_uri, "hotline-12345", [
        {"channel": "hotline", "message_id": "h-1", "body": fresh("hotline", "X1")},
        {"channel": "petition", "message_id": "h-2", "body": fresh("petition", "X2")},
        {"channel": "hotline", "message_id": "h-3", "body": fresh("hotline", "X3"), "user_id": "county-all"},
    ])
    assert own["results"]["h-1"]["routing_key"] == "hotline-12345.hotline.accepted"
    assert own["results"]["h-2"]["body"]["error"]["error"] == "forbidden"
    assert "h-3" in own["refused"] and "user_id" in own["refused"]["h-3"]  # the broker checks user_id
    strange = outside_system(stranger_uri, "stranger", [
        {"channel": "hotline", "message_id": "s-1", "body": fresh("hotline", "X4")}])
    assert strange["results"]["s-1"]["body"]["error"]["error"] == "unauthorized"
    reasons = sorted(m.headers["x-reason"].split(":")[0] for m in drain(amqp, "intake.ingress.dead", 2))
    assert reasons == ["forbidden", "unauthorized"]


def test_undecodable_messages_are_dead_lettered_not_dropped(system, amqp):
    producer = Producer(amqp.default_channel)
    exchange = Exchange("intake.ingress", "topic", durable=True)
    producer.publish(b"{not json", exchange=exchange, routing_key="hotline.submitted",
                     content_type="application/json", message_id="raw-1")
    producer.publish(b"\xff\xfe", exchange=exchange, routing_key="hotline.submitted",
                     content_type="application/octet-stream", message_id="raw-2")
    dead = drain(amqp, "intake.ingress.dead", 2)
    assert {m.properties["message_id"] for m in dead} == {"raw-1", "raw-2"}
    assert all(m.headers["x-reason"].startswith("unauthorized") for m in dead)  # guest is no source system


def test_every_source_gets_its_feedback_on_egress_when_the_case_is_resolved(system, amqp):
    first = post(system, "/submissions/hotline", fresh("hotline", "F1", content=(
        "来电人称其邻居李某在两家交界处砌院墙，占用其家宅基地约半米，多次协商未果。")))
    second = post(system, "/submissions/petition", fresh("petition", "F2", petitioner_name="王秀英",
                                                         petitioner_phone="13800001001", id_number=None,
                                                         township="大仲村镇", content=(
        "后楼村邻居李某翻盖房子把院墙往我家挪了半米多，占了我家宅基地，调解两次不拆。")))
    case_no = first.json()["case_no"]
    assert second.json()["merged_into"] == case_no
    feedback = Queue("test.feedback", exchange=Exchange("intake.egress", "topic", durable=True), routing_key="#",
                     durable=False, auto_delete=True)
    feedback.declare(channel=amqp.default_channel)
    _, body = new_event("case_resolved", {"case_no": case_no, "outcome": "resolved", "summary": "双方达成协议，拆除越界部分。",
                                          "resolved_at": datetime.now(timezone.utc)},
                        correlation_id=case_no, occurred_at=datetime.now(timezone.utc))
    Producer(amqp.default_channel).publish(body, exchange=Exchange("mediation.events", "topic", durable=True),
                                           routing_key="case_resolved", content_type="application/json")
    messages = drain(amqp, "test.feedback", 2)
    bodies = {m.delivery_info["routing_key"]: json.loads(m.body) for m in messages}
    assert set(bodies) == {"hotline.case_resolved", "petition.case_resolved"}
    assert {b["reference"] for b in bodies.values()} == {"GD-0001-F1", "XF-0001-F2"}
    assert all(b["reply"] == "双方达成协议，拆除越界部分。" and b["case_no"] == case_no for b in bodies.values())
    with ServiceRpcProxy("intake", system["config"]) as intake:
        view = intake.get_case(case_no)
    assert view["status"] == "resolved" and all(s["feedback_sent_at"] for s in view["sources"])
