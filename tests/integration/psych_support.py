"""Psych's integration tests: a small hand-built pool, events in and out of a real broker,
the gateway over real HTTP, staff tokens, and a manual clock shared by every container."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime

import requests
from kombu import Consumer, Queue
from sqlalchemy import select

from services.common.broker import ConfirmedPublisher, Outgoing
from services.common.clock import LOCAL_TZ, ManualClock
from services.common.db import Database
from services.contracts.catalogue import spec
from services.contracts.envelope import load_event, new_event
from services.gateway import auth
from services.gateway.models import Base as GatewayBase
from services.psych import roster
from services.psych.models import Base as PsychBase, Offer, PsychRequest
from tests.harness import free_port
from tests.unit.psych.records import build_record

START = datetime(2026, 6, 3, 10, 0, tzinfo=LOCAL_TZ)  # a Wednesday morning
EVERY_DAY = [{"day": d, "start": "08:00", "end": "20:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]


def small_pool() -> list[dict]:
    """Three counsellors for a 婚姻家庭 case in 兰陵镇, ranked A > B > C by speciality and distance."""
    common = {"slots": EVERY_DAY, "urgent_callout": True, "callout_response_minutes": 30}
    return [
        build_record("PC-9001", name="甲咨询师", specialities=["婚姻家庭", "亲子关系", "危机干预"], phone="13900000001",
                     **common),
        build_record("PC-9002", name="乙咨询师", specialities=["婚姻家庭", "危机干预"], township_code="371324-010",
                     phone="13900000002", **common),
        build_record("PC-9003", name="丙咨询师", specialities=["情绪疏导"], township_code="371324-018",
                     phone="13900000003", **common),
    ]


def psych_requested(case_no: str, **changes) -> dict:
    return {"case_no": case_no, "urgent": False, "reason": "routing", "dispute_type": "婚姻家庭",
            "township": "371324-003", "village": "371324-003-001", "risk_signals": [], "consent": "given",
            "parties": [{"role": "applicant", "name": "张三", "phone": "13812345678"}], **changes}


def case_urgent(case_no: str, when: datetime, **changes) -> dict:
    return {"case_no": case_no, "township": "371324-003", "signals": ["suicide_threat: 喝农药"],
            "summary": "再不解决我就喝农药", "complainant": {"role": "complainant", "phone": "13812345678"},
            "detected_at": when, **changes}


@dataclass
class PsychEnv:
    config: dict
    clock: ManualClock
    psych_db: Database
    gateway_db: Database
    amqp: object
    containers: dict = field(default_factory=dict)

    # -- events ---------------------------------------------------------------------
    def publish(self, event_type: str, data: dict) -> None:
        event, body = new_event(event_type, data, correlation_id=data["case_no"], occurred_at=self.clock.now())
        publisher = ConfirmedPublisher(self.config["AMQP_URI"])
        try:
            publisher.publish([Outgoing(exchange=f"{spec(event_type).producer}.events", routing_key=event_type,
                                        body=body, message_id=event.event_id, correlation_id=data["case_no"])])
        finally:
            publisher.close()

    def take(self, queue: str, count: int = 1, timeout: float = 10.0) -> list[tuple]:
        """The next `count` (event, raw body) on a consumer queue nobody serves in the test (notify's)."""
        got = []

        def on_message(body, message):
            if len(got) < count:
                raw = message.body if isinstance(message.body, str) else message.body.decode("utf-8")
                got.append((load_event(raw), raw))
                message.ack()

        deadline = time.monotonic() + timeout
        with self.amqp.channel() as channel:
            with Consumer(channel, queues=[Queue(queue, durable=True, no_declare=True)], callbacks=[on_message],
                          accept=None):
                channel.basic_qos(0, count, False)
                while len(got) < count:
                    self.amqp.drain_events(timeout=max(deadline - time.monotonic(), 0.01))
        return got

    def depth(self, queue: str) -> int:
        return self.amqp.default_channel.queue_declare(queue, passive=True).message_count

    # -- state ----------------------------------------------------------------------
    # (read in a committed transaction: its objects stay readable after it ends)
    def request(self, case_no: str) -> PsychRequest | None:
        with self.psych_db.transaction() as uow:
            return uow.session.get(PsychRequest, case_no)

    def offers(self, case_no: str) -> list[Offer]:
        with self.psych_db.transaction() as uow:
            return list(uow.session.scalars(select(Offer).where(Offer.case_no == case_no).order_by(Offer.id)))

    # -- HTTP -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.config['WEB_SERVER_ADDRESS']}"

    def token(self, role: str, directory_id: str | None = None, township: str | None = None) -> str:
        principal = auth.Principal(kind="staff", id=(directory_id or role).lower(), role=role,
                                   directory_id=directory_id, township=township)
        return auth.issue_token(principal, os.environ["LANLING_TOKEN_SECRET"], self.clock.now())

    def headers(self, who) -> dict:
        """`who`: a token, "operator" (the operator key), an API key dict, or None."""
        if who == "operator":
            return {"X-Api-Key": os.environ["LANLING_API_KEY"]}
        if isinstance(who, dict):
            return who
        return {"Authorization": f"Bearer {who}"} if who else {}

    def call(self, method: str, path: str, who=None, body=None, **kwargs) -> requests.Response:
        return requests.request(method, self.base_url + path, json=body, headers=self.headers(who), timeout=15,
                                **kwargs)

    def get(self, path: str, who=None, **kwargs):
        return self.call("GET", path, who, **kwargs)

    def post(self, path: str, who=None, body=None):
        return self.call("POST", path, who, body if body is not None else {})


def make_env(container_factory, service_config, amqp, *, pool=None, gateway=True, replicas=1) -> PsychEnv:
    from services.gateway.service import GatewayService
    from services.psych.service import PsychService

    clock = ManualClock(START)
    config = dict(service_config, CLOCK=clock, PSYCH_OFFER_SCAN_SECONDS=0.05,
                  WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    urls = config["DATABASES"]
    psych_db = Database(urls["psych"], PsychBase.metadata, "psych", clock)
    gateway_db = Database(urls["gateway"], GatewayBase.metadata, "gateway", clock)
    psych_db.create_all()
    gateway_db.create_all()
    with psych_db.transaction() as uow:
        roster.replace_pool(uow.session, small_pool() if pool is None else pool, uow.now)
    env = PsychEnv(config, clock, psych_db, gateway_db, amqp)
    env.containers["psych"] = [container_factory(PsychService, config) for _ in range(replicas)]
    for container in env.containers["psych"]:
        container.start()
    if gateway:
        env.containers["gateway"] = container_factory(GatewayService, config)
        env.containers["gateway"].start()
    return env
