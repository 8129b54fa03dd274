"""`lanling demo`: replay a realistic day of cases through every channel and both ways in.

Against a running system (`make run`): about half the submissions go to the gateway over
HTTP, the other half are published on the AMQP ingress by a demo source system with its
own broker user (created through RabbitMQ's management API when it is reachable; otherwise
everything goes over HTTP, and the demo says so). Some disputes are reported twice or three
times through different channels (they should merge), a few describe an emergency, some grid
reports were resolved on site. It then follows each case until it is routed and prints
where they went: level, mechanism, units and mediators, merges, emergencies.
"""
from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from datetime import datetime, time as day_time, timedelta, timezone
from urllib.parse import urlparse

import requests
from tqdm import tqdm

from services.common import config
from services.common.clock import LOCAL_TZ

DEMO_USER = "lanling-demo"
REPEAT_SHARE = 0.15
URGENT_SHARE = 0.015


def run_demo(base_url: str, api_key: str, count: int = 200, seed: int | None = None) -> dict:
    from services.intake.synthetic import Generator
    from services.routing.directory import Directory

    base_url = base_url.rstrip("/")
    session = requests.Session()
    session.headers["X-Api-Key"] = api_key
    _check_health(session, base_url)
    rng = random.Random(seed)
    generator = Generator(Directory.from_reference().places_snapshot(), seed=rng.randrange(10**6))
    plan = _a_day(generator, rng, count)
    amqp = _amqp_publisher()
    run_id = uuid.uuid4().hex[:6].upper()
    outcomes = []
    with tqdm(total=len(plan), desc="submitting", unit="case") as bar:
        for item in plan:
            payload = _with_run_id(item["payload"], item["channel"], run_id)
            if amqp is not None and rng.random() < 0.5:
                outcome = amqp.submit(item["channel"], payload)
            else:
                outcome = _post(session, base_url, item["channel"], payload)
            outcomes.append({**item, **outcome})
            bar.update()
    if amqp is not None:
        amqp.close()
    routed = _follow(session, base_url, outcomes)
    summary = _summary(outcomes, routed, amqp is not None)
    _print(summary)
    return summary


# -- the day ---------------------------------------------------------------------
def _a_day(generator, rng: random.Random, count: int) -> list[dict]:
    """Submissions received over today (Asia/Shanghai), in order, with repeats and emergencies."""
    now = datetime.now(timezone.utc)
    start = datetime.combine(now.astimezone(LOCAL_TZ).date(), day_time(7, 30), LOCAL_TZ).astimezone(timezone.utc)
    if start > now - timedelta(hours=1):
        start = now - timedelta(hours=10)
    span = (now - start).total_seconds() - 120
    times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    plan, open_disputes = [], []
    for at in times:
        if open_disputes and rng.random() < REPEAT_SHARE:
            dispute, used = rng.choice(open_disputes)
            channel = generator.channel_for(dispute, exclude=tuple(used))
            used.append(channel)
            plan.append({"channel": channel, "dispute": dispute.id, "repeat": True,
                         "payload": generator.submission(dispute, channel, at, first=False)})
            continue
        dispute = generator.dispute(urgent_rate=URGENT_SHARE)
        channel = generator.channel_for(dispute)
        open_disputes.append((dispute, [channel]))
        plan.append({"channel": channel, "dispute": dispute.id, "repeat": False,
                     "payload": generator.submission(dispute, channel, at)})
    return plan


def _with_run_id(payload: dict, channel: str, run_id: str) -> dict:
    from services.contracts.channels import reference_field

    field = reference_field(channel)
    return {**payload, field: f"D{run_id}-{payload[field]}"[:64]}


# -- the two ways in ---------------------------------------------------------------
def _post(session, base_url, channel, payload) -> dict:
    response = session.post(f"{base_url}/api/v1/submissions/{channel}", json=payload, timeout=30)
    body = response.json()
    if response.status_code in (200, 202):
        return {"way": "http", "status": "merged" if body["status"] == "merged" else "accepted",
                "case_no": body["case_no"]}
    return {"way": "http", "status": "rejected", "case_no": None, "error": body.get("message")}


class _AmqpPublisher:
    """The demo's own source system on the AMQP ingress: publish, then wait for the result."""

    def __init__(self, uri: str, user: str):
        import pika

        self.user = user
        self.connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.channel = self.connection.channel()
        self.queue = f"ingress.{user}.results"
        self.channel.queue_declare(self.queue, exclusive=True)  # gone when the demo disconnects
        self.channel.queue_bind(self.queue, "intake.ingress.results", routing_key=f"{user}.#")
        self.channel.confirm_delivery()
        self.properties = pika.BasicProperties
        self.results = self.channel.consume(self.queue, inactivity_timeout=30)

    def submit(self, channel: str, payload: dict) -> dict:
        message_id = str(uuid.uuid4())
        self.channel.basic_publish(
            "intake.ingress", f"{channel}.submitted", json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            self.properties(content_type="application/json", delivery_mode=2, message_id=message_id,
                            user_id=self.user))
        for method, properties, body in self.results:
            if method is None:
                break
            self.channel.basic_ack(method.delivery_tag)
            if properties.correlation_id == message_id:
                result = json.loads(body)
                return {"way": "amqp", "status": result["status"], "case_no": result["case_no"],
                        "error": (result.get("error") or {}).get("message")}
        return {"way": "amqp", "status": "no answer", "case_no": None}

    def close(self) -> None:
        self.channel.cancel()
        self.connection.close()


def _amqp_publisher() -> _AmqpPublisher | None:
    """A broker user and a source system for the demo, or None (the demo then uses HTTP only)."""
    from services.intake import admin

    amqp = urlparse(config.get("AMQP_URI"))
    vhost = amqp.path.lstrip("/") or "/"
    management = os.environ.get("RABBIT_API_URI") or f"http://guest:guest@{amqp.hostname or '127.0.0.1'}:15672"
    password = uuid.uuid4().hex
    try:
        quoted = requests.utils.quote(vhost, safe="")
        requests.put(f"{management}/api/users/{DEMO_USER}", json={"password": password, "tags": ""},
                     timeout=5).raise_for_status()
        requests.put(f"{management}/api/permissions/{quoted}/{DEMO_USER}", json=admin.broker_permissions(DEMO_USER),
                     timeout=5).raise_for_status()
        admin.add_source_system(DEMO_USER, ["hotline", "petition", "opinion", "app", "grid", "walkin"],
                                "lanling demo")
        netloc = f"{DEMO_USER}:{password}@{amqp.hostname or '127.0.0.1'}:{amqp.port or 5672}"
        return _AmqpPublisher(f"amqp://{netloc}/{requests.utils.quote(vhost, safe='')}", DEMO_USER)
    except Exception as exc:  # noqa: BLE001 - the demo still runs, over HTTP alone
        print(f"lanling demo: no AMQP source system ({exc}); submitting everything over HTTP")
        return None


# -- following the cases -------------------------------------------------------------
def _follow(session, base_url, outcomes, timeout: float = 60) -> dict[str, dict]:
    """Each case's view once it is routed (or finished), polled against one deadline."""
    waiting = {o["case_no"] for o in outcomes if o.get("case_no")}
    routed: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    with tqdm(total=len(waiting), desc="routing", unit="case") as bar:
        while waiting and time.monotonic() < deadline:
            for case_no in sorted(waiting):
                response = session.get(f"{base_url}/api/v1/cases/{case_no}", timeout=30)
                if response.status_code == 200 and response.json()["status"] != "received":
                    routed[case_no] = response.json()
                    waiting.discard(case_no)
                    bar.update()
            if waiting:
                time.sleep(0.5)
    for case_no in sorted(waiting):
        response = session.get(f"{base_url}/api/v1/cases/{case_no}", timeout=30)
        channel = next(o["channel"] for o in outcomes if o.get("case_no") == case_no)
        print(f"lanling demo: {case_no} ({channel}) not routed within {timeout:.0f} s: "
              f"{response.json().get('status', response.status_code) if response.ok else response.status_code}")
    return routed


def _summary(outcomes, routed, used_amqp: bool) -> dict:
    cases = list(routed.values())
    mediators = Counter(m["name"] or m["id"] for c in cases for m in c.get("mediators") or [])
    units = Counter((c.get("unit") or {}).get("name") or (c.get("unit") or {}).get("id") for c in cases
                    if c.get("unit"))
    return {
        "submitted": len(outcomes),
        "by_channel": dict(Counter(o["channel"] for o in outcomes)),
        "by_way": dict(Counter(o["way"] for o in outcomes)),
        "outcomes": dict(Counter(o["status"] for o in outcomes)),
        "repeats_sent": sum(o["repeat"] for o in outcomes),
        "resolved_on_site_reports": sum(1 for o in outcomes if o["payload"].get("resolved_on_site")),
        "cases": len({o["case_no"] for o in outcomes if o.get("case_no")}),
        "routed": len(cases),
        "urgent": sum(1 for c in cases if c.get("urgent")),
        "status": dict(Counter(c["status"] for c in cases)),
        "level": dict(Counter(c.get("level") for c in cases if c.get("level"))),
        "mechanism": dict(Counter(c.get("mechanism") for c in cases if c.get("mechanism"))),
        "units": dict(units.most_common(8)),
        "mediators": len(mediators),
        "busiest_mediators": dict(mediators.most_common(5)),
        "amqp": used_amqp,
    }


def _print(summary: dict) -> None:
    def line(label, counts):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"
        print(f"  {label:<12} {shown}")

    print(f"\n{summary['submitted']} submissions -> {summary['cases']} cases "
          f"({summary['outcomes'].get('merged', 0)} merged into an open case, "
          f"{summary['outcomes'].get('rejected', 0)} rejected), {summary['routed']} routed, "
          f"{summary['urgent']} urgent; {summary['repeats_sent']} were repeats of a dispute already reported today, "
          f"{summary['resolved_on_site_reports']} grid reports were resolved on site")
    line("channels", summary["by_channel"])
    line("ways in", summary["by_way"])
    line("status", summary["status"])
    line("level", summary["level"])
    line("mechanism", summary["mechanism"])
    line("units", summary["units"])
    print(f"  {'handlers':<12} {summary['mediators']} involved; busiest: "
          + ", ".join(f"{k} {v}" for k, v in summary["busiest_mediators"].items()))


def _check_health(session, base_url) -> None:
    try:
        response = session.get(f"{base_url}/api/v1/health", timeout=10)
    except requests.RequestException as exc:
        raise SystemExit(f"lanling demo: the gateway at {base_url} does not answer ({exc}); start it with make run")
    if response.status_code != 200:
        raise SystemExit(f"lanling demo: the system is not healthy yet: {response.text[:300]}")
