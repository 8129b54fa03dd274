"""Routing as a service on a real broker and database: the escalation chain and returns driven
by mediation's events, load released on close, and the gateway's routing API (reference lists,
the roster, the parties' choice, roster edits, classification agreeing with `lanling classify`).

Mediation and intake are stand-ins that record what routing sends them (the other services'
boundary); the events they would send are published to the broker as they would be."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_waiter

from services.common import config
from services.common.broker import ConfirmedPublisher, Outgoing
from services.common.clock import SystemClock
from services.common.db import Database
from services.common.messaging import handle
from services.contracts.envelope import new_event
from services.gateway import auth
from services.gateway.bootstrap import create_api_key
from services.gateway.models import Base as GatewayBase, StaffAccount
from services.gateway.service import GatewayService
from services.routing import handlers
from services.routing.directory import Directory
from services.routing.models import Base as RoutingBase
from services.routing.service import RoutingService
from tests.harness import free_port

TOWNSHIP = "371324-009"  # 南桥镇
GRID = "371324-009-004-01"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "routing" / "labelled_texts.jsonl"
LANLING = str(Path(sys.executable).parent / "lanling")


class MediationStandIn:
    name = "mediation"
    routed: list[dict] = []

    @handle("case_routed")
    def on_case_routed(self, event):
        self.routed.append(event.data)


class IntakeStandIn:
    name = "intake"
    places: list[dict] = []

    @handle("directory_updated")
    def on_directory_updated(self, event):
        self.places.append(event.data)

    @rpc
    def get_case(self, case_no):
        return {"case_no": case_no, "township": TOWNSHIP, "sources": [{"source_user": "lanling-app"}], "handlers": []}


@pytest.fixture
def config_(service_config):
    MediationStandIn.routed, IntakeStandIn.places = [], []
    return {**service_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}


@pytest.fixture
def routing_db(config_):
    db = Database(config_["DATABASES"]["routing"], RoutingBase.metadata, "routing", SystemClock())
    db.create_all()
    with db.transaction() as uow:
        handlers.load_reference(uow, Directory.from_reference())
    yield db
    db.dispose()


@pytest.fixture
def publish(config_):
    publisher = ConfirmedPublisher(config_["AMQP_URI"])
    publisher.declare_topology(config_["RETRY_DELAYS_MS"])

    def send(event_type: str, data: dict):
        event, body = new_event(event_type, data, correlation_id=data["case_no"],
                                occurred_at=datetime.now(timezone.utc))
        publisher.publish([Outgoing(exchange=f"{event.producer}.events", routing_key=event_type, body=body,
                                    message_id=event.event_id, correlation_id=data["case_no"])])

    yield send
    publisher.close()


def case_received(case_no: str, content: str, channel: str = "hotline", **fields) -> dict:
    now = datetime.now(timezone.utc)
    return {"case_no": case_no, "accepted_at": now, "content": content,
            "source": {"channel": channel, "reference": f"ref-{case_no}", "received_at": now}, **fields}


def routed_after(mediation, publish, event_type, data) -> dict:
    """Publish an event and return the case_routed it makes routing send."""
    with entrypoint_waiter(mediation, "on_case_routed", timeout=20):
        publish(event_type, data)
    return MediationStandIn.routed[-1]


def ids(payload) -> list[str]:
    return [ref["id"] for ref in payload["mediators"]]


def test_escalation_from_grid_to_county_and_returns_through_the_service(container_factory, config_, routing_db,
                                                                         publish):
    routing = container_factory(RoutingService, config_)
    mediation = container_factory(MediationStandIn, config_)
    routing.start()
    mediation.start()
    case_no = "371324-20261130-000101"
    payload = routed_after(mediation, publish, "case_received", case_received(
        case_no, "两家因为宅基地边界吵起来了, 网格员调解", channel="grid", grid_code=GRID))
    assert (payload["attempt"], payload["level"], payload["mechanism"]) == (1, "grid", "chain")
    held = set(ids(payload))

    payload = routed_after(mediation, publish, "escalation_requested", {
        "case_no": case_no, "from_level": "grid", "reason": "现场调解不成"})
    assert (payload["attempt"], payload["level"], payload["trigger"]) == (2, "village", "escalated")
    held |= set(ids(payload))

    returner = ids(payload)[0]  # 退单 at the village: never back to the same mediator
    payload = routed_after(mediation, publish, "assignment_returned", {
        "case_no": case_no, "returned_by": returner, "exclude_mediators": [returner], "reason": "本人系当事人亲属"})
    assert (payload["attempt"], payload["level"], payload["trigger"]) == (3, "village", "returned")
    assert returner not in ids(payload) and not set(ids(payload)) & held
    held |= set(ids(payload))

    for attempt, level in ((4, "work_area"), (5, "township"), (6, "county")):
        payload = routed_after(mediation, publish, "escalation_requested", {
            "case_no": case_no, "from_level": payload["level"], "reason": "调解不成"})
        assert (payload["attempt"], payload["level"]) == (attempt, level)
        assert not set(ids(payload)) & held
        held |= set(ids(payload))
        assert [h["attempt"] for h in payload["history"]] == list(range(1, attempt))
    assert payload["room"] == "371324-TJ-09"  # the county room guiding 南桥镇 (连锁)
    assert payload["supervisors"][0]["role"] == "township_head" and payload["supervisors"][0]["phone"]

    lead = ids(payload)[0]
    with routing_db.reading() as session:
        assert handlers.mediator_load(session)[lead] == 1
    with entrypoint_waiter(routing, "on_case_closed", timeout=20):
        publish("case_closed", {"case_no": case_no, "outcome": "resolved", "closed_at": datetime.now(timezone.utc)})
    with routing_db.reading() as session:
        assert lead not in handlers.mediator_load(session)


@pytest.fixture
def gateway(container_factory, config_, routing_db):
    gateway_db = Database(config_["DATABASES"]["gateway"], GatewayBase.metadata, "gateway", SystemClock())
    gateway_db.create_all()
    containers = {service.name: container_factory(service, config_)
                  for service in (RoutingService, GatewayService, MediationStandIn, IntakeStandIn)}
    for container in containers.values():
        container.start()
    base = f"http://{config_['WEB_SERVER_ADDRESS']}/api/v1"

    class Client:
        db = gateway_db
        mediation, routing, intake = containers["mediation"], containers["routing"], containers["intake"]

        @staticmethod
        def token(role, principal_id, kind="staff", township=None, cases=()):
            principal = auth.Principal(kind=kind, id=principal_id, role=role, township=township, cases=tuple(cases))
            return auth.issue_token(principal, config.secret("LANLING_TOKEN_SECRET"), datetime.now(timezone.utc))

        def call(self, method, path, token=None, key=None, **kwargs):
            headers = {"Authorization": f"Bearer {token}"} if token else {
                "X-Api-Key": key or config.secret("LANLING_API_KEY")}
            return requests.request(method, base + path, headers=headers, timeout=30, **kwargs)

    yield Client()
    gateway_db.dispose()


def test_reference_lists_and_the_published_roster(gateway):
    townships = gateway.call("GET", "/reference/townships").json()
    assert len(townships) == 18 and {"code", "name", "centre"} <= set(townships[0])
    grids = gateway.call("GET", "/reference/grids", params={"township": "南桥镇"}).json()
    assert grids and all(g["township"] == TOWNSHIP and g["code"] and g["grid_worker"].startswith("GW-") for g in grids)
    assert gateway.call("GET", "/reference/grids", params={"township": "北京"}).status_code == 400
    centres = gateway.call("GET", "/reference/centres").json()
    assert len(centres) == 19 and all(c["code"] and c["name"] for c in centres)
    units = gateway.call("GET", "/reference/units").json()
    assert {"U-MEDICAL-COMMITTEE", "U-LABOUR-ARBITRATION"} <= {u["code"] for u in units}
    assert gateway.call("GET", "/reference/units", key="wrong").status_code == 401

    roster = gateway.call("GET", "/mediators", params={"specialty": "婚姻家庭", "level": "township",
                                                       "township": "南桥镇"}).json()
    assert roster and all(m["level"] == "township" and m["township"] == TOWNSHIP and "婚姻家庭" in m["specialties"]
                          for m in roster)
    assert all("phone" not in m for m in roster)
    assert gateway.call("GET", "/mediators", params={"level": "province"}).status_code == 400


def test_the_parties_choice_through_the_api(gateway, publish):
    case_no = "371324-20261130-000201"
    first = routed_after(gateway.mediation, publish, "case_received", case_received(
        case_no, "邻居家的树根把我家院墙顶裂了, 请求调解", township=TOWNSHIP, village="371324-009-004"))
    citizen = gateway.token("citizen", "citizen", kind="citizen", cases=[case_no])

    with entrypoint_waiter(gateway.mediation, "on_case_routed", timeout=20):
        answer = gateway.call("POST", f"/cases/{case_no}/mediator", citizen,
                              json={"mediators": ["MT-009-3", "MT-009-1"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "honoured" and body["mediator"]["id"] == "MT-009-3"
    routed = MediationStandIn.routed[-1]
    assert routed["trigger"] == "party_choice" and ids(routed) == ["MT-009-3", "MT-009-1"]
    assert routed["attempt"] == first["attempt"] + 1

    refused = gateway.call("POST", f"/cases/{case_no}/mediator", citizen, json={"mediators": ["MT-001-1", "MT-009-2"]})
    assert refused.status_code == 409 and set(refused.json()["fields"]) == {"MT-001-1"}
    assert "只受理" in refused.json()["fields"]["MT-001-1"][0]
    unknown = gateway.call("POST", f"/cases/{case_no}/mediator", citizen, json={"mediator": "MX-404"})
    assert unknown.status_code == 400 and "MX-404" in unknown.json()["fields"]
    other = gateway.token("citizen", "citizen", kind="citizen", cases=["371324-20261130-000999"])
    assert gateway.call("POST", f"/cases/{case_no}/mediator", other, json={"mediator": "MT-009-2"}).status_code == 403
    mediator = gateway.token("mediator", "mt-009-2")
    assert gateway.call("POST", f"/cases/{case_no}/mediator", mediator,
                        json={"mediator": "MT-009-2"}).status_code == 403
    desk = gateway.token("receptionist", "reception-009-1", township=TOWNSHIP)  # on the party's behalf
    with entrypoint_waiter(gateway.mediation, "on_case_routed", timeout=20):
        chosen = gateway.call("POST", f"/cases/{case_no}/mediator", desk, json={"mediator": "MT-009-2"})
    assert chosen.status_code == 200, chosen.text
    app_key = create_api_key("lanling-app", ["app"], gateway.db)  # the app forwarding its user's pick
    other_key = create_api_key("other-system", ["hotline"], gateway.db)
    with entrypoint_waiter(gateway.mediation, "on_case_routed", timeout=20):
        assert gateway.call("POST", f"/cases/{case_no}/mediator", key=app_key,
                            json={"mediator": "MT-009-4"}).status_code == 200
    assert gateway.call("POST", f"/cases/{case_no}/mediator", key=other_key,
                        json={"mediator": "MT-009-5"}).status_code == 403
    history = gateway.call("GET", f"/cases/{case_no}/routing").json()["attempts"]
    assert [a["trigger"] for a in history] == ["received"] + ["party_choice"] * 3


def test_roster_edits_are_for_supervisors_and_reach_intake(gateway):
    new = {"name": "赵新民", "phone": "13800009999", "level": "village", "village": "371324-009-004",
           "specialties": ["邻里纠纷"]}
    assert gateway.call("POST", "/mediators", gateway.token("mediator", "mt-009-1"), json=new).status_code == 403
    assert gateway.call("POST", "/mediators", gateway.token("county_supervisor", "supervisor-1"),
                        json={**new, "phone": "123"}).status_code == 400
    with entrypoint_waiter(gateway.intake, "on_directory_updated", timeout=20):
        created = gateway.call("POST", "/mediators", gateway.token("township_head", "head-009", township=TOWNSHIP),
                               json=new)
    assert created.status_code == 201, created.text
    body = created.json()
    mediator_id = body["key"]
    assert body["record"]["phone"] == "138****9999" and body["accounts"][0]["account"] == "created"
    assert IntakeStandIn.places[-1]["version"] == body["version"] == 2
    with gateway.db.reading() as session:
        account = session.get(StaffAccount, mediator_id.lower())
        assert (account.role, account.directory_id, account.must_change_password) == ("mediator", mediator_id, True)
    assert gateway.call("GET", f"/mediators/{mediator_id}").json()["village"] == "371324-009-004"

    supervisor = gateway.token("county_supervisor", "supervisor-1")
    with entrypoint_waiter(gateway.intake, "on_directory_updated", timeout=20):
        gone = gateway.call("POST", f"/mediators/{mediator_id}/deactivate", supervisor, json={"reason": "调离"})
    assert gone.status_code == 200 and IntakeStandIn.places[-1]["version"] == 3
    with gateway.db.reading() as session:
        assert not session.get(StaffAccount, mediator_id.lower()).active
    changes = gateway.call("GET", "/directory/changes", supervisor, params={"key": mediator_id}).json()
    assert [c["action"] for c in changes] == ["deactivated", "created"] and changes[0]["actor"] == "supervisor-1"


def test_the_cli_and_the_service_classify_alike(gateway):
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()[::10]]
    channels = ("hotline", "petition", "app", "walkin", "opinion", "grid")
    items = [{"id": f"t{n}", "text": row["text"], "title": row.get("title") or "", "channel": channels[n % 6],
              "township": ("南桥镇", "卞庄街道", None)[n % 3]} for n, row in enumerate(rows)]
    items.append({"id": "big", "text": "我们30多名工人被拖欠工资8万元, 准备集体去县里上访", "people_count": 30})
    lines = "\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n"
    cli = subprocess.run([LANLING, "classify"], input=lines, capture_output=True, text=True, timeout=120, check=True)
    from_cli = [json.loads(line) for line in cli.stdout.splitlines()]
    from_service = [gateway.call("POST", "/classify", json=item).json() for item in items]
    assert len(from_cli) == len(items) == len(from_service)
    for cli_answer, service_answer in zip(from_cli, from_service):
        assert cli_answer == service_answer
    assert {a["mechanism"] for a in from_cli} >= {"supermarket", "specialised", "joint"}
    assert gateway.call("POST", "/classify", json={"title": "no text"}).status_code == 400
