"""Notify as a real process, sending to real receivers: an SMTP server process (aiosmtpd), and an
HTTP SMS gateway and push webhook that fail before they accept. notify is killed with SIGKILL
in the middle of a batch; the receivers then count unique idempotency keys.

The producers (intake, mediation, psych, routing) are played by publishing their contract events
to their exchanges exactly as their outboxes do; people use the gateway.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import mailbox
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from services.common import privacy
from services.common.broker import ConfirmedPublisher, Outgoing
from services.common.clock import SystemClock
from services.common.db import Database
from services.contracts.catalogue import spec
from services.gateway.bootstrap import load_accounts
from services.gateway.models import Base as GatewayBase
from services.notify.channels import SmtpEmail
from tests.conftest import Databases, using_postgres
from tests.harness import System, free_port, wait_until
from tests.unit.notify.contract_events import (COMPLAINANT, COUNSELLOR, COUNTY_SUPERVISOR, MEDIATOR, PHONES,
                                               STAFF, SUPERVISOR, UNIT, directory_snapshot, payloads, wire)

PUSH_SECRET = "push-secret-for-tests"
SMS_KEY = "sms-gateway-key-for-tests"
REJECTED_PHONE = "13705390009"
PASSWORD = "test-initial-password"   # tests/conftest.py: LANLING_STAFF_INITIAL_PASSWORD


class Receivers:
    """The county's SMS gateway and app-push webhook: they deduplicate on Idempotency-Key, as the
    contract asks, and can be told to fail someone's first attempt, or to reject someone."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []          # every request, as it came
        self.accepted: dict[str, dict] = {}     # key -> the message accepted for it (once)
        self.fail_first: set[str] = set()       # recipients whose first try of a key gets a 503
        self.reject: set[str] = set()           # recipients answered 400 (a wrong number)
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                key = self.headers.get("Idempotency-Key")
                with receivers.lock:
                    tries = sum(1 for r in receivers.requests if r["key"] == key)
                    status = (400 if body["to"] in receivers.reject else
                              503 if body["to"] in receivers.fail_first and tries == 0 else 200)
                    receivers.requests.append({"path": self.path, "key": key, "body": body, "raw": raw,
                                               "status": status, "headers": dict(self.headers)})
                    if status == 200:
                        receivers.accepted.setdefault(key, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "try later"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys(self, prefix: str = "") -> list[str]:
        with self.lock:
            return [r["key"] for r in self.requests if r["key"].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("notify")
    maildir = workdir / "mail"
    smtp_port = free_port()
    smtp = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                             "-c", "aiosmtpd.handlers.Mailbox", str(maildir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    receivers = Receivers()
    dbs = Databases(workdir, using_postgres(), services=("notify", "gateway"))
    if not using_postgres():
        dbs.urls = {}   # the System's default: SQLite files under its var/
    system = System(workdir, db_urls=dbs.urls, env={
        "NOTIFY_SMS_URL": f"{receivers.url}/sms", "NOTIFY_SMS_KEY": SMS_KEY,
        "NOTIFY_PUSH_URL": f"{receivers.url}/push", "NOTIFY_PUSH_SECRET": PUSH_SECRET,
        "NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": str(smtp_port), "NOTIFY_SMTP_STARTTLS": "false",
        "NOTIFY_QUIET_HOURS": "00:00-00:00",   # the hour the suite runs at must not matter (quiet hours: integration)
        "NOTIFY_RETRY_INITIAL_SECONDS": "0.3", "NOTIFY_RETRY_MAX_SECONDS": "1", "NOTIFY_MAX_ATTEMPTS": "5",
        "NOTIFY_CLAIM_SECONDS": "3", "NOTIFY_SWEEP_SECONDS": "0.3", "NOTIFY_SMS_TIMEOUT": "3",
        "NOTIFY_PUSH_TIMEOUT": "3", "NOTIFY_SMTP_TIMEOUT": "3",
    })
    try:
        system.lanling("migrate", "notify", "gateway")
        system.lanling("declare")
        gateway_url = dbs.urls.get("gateway") or f"sqlite:///{workdir}/var/gateway.db"
        gateway_db = Database(gateway_url, GatewayBase.metadata, "gateway", SystemClock())
        load_accounts([
            {"username": "mt-001-1", "role": "mediator", "directory_id": MEDIATOR["id"], "township": "371324-001"},
            {"username": "head-001", "role": "township_head", "directory_id": SUPERVISOR["id"],
             "township": "371324-001"},
        ], gateway_db)
        gateway_db.dispose()
        smtp_ready = wait_until(lambda: _port_open(smtp_port), 20, what="the SMTP server")
        assert smtp_ready
        system.start("notify")
        system.start("gateway")
        wait_until(lambda: _notify_answers(system), 90, interval=0.3, what="gateway and notify up")
        publisher = ConfirmedPublisher(system.env["AMQP_URI"])
        yield {"system": system, "receivers": receivers, "maildir": maildir, "publisher": publisher,
               "workdir": workdir}
        publisher.close()
    finally:
        system.stop()
        smtp.terminate()
        smtp.wait(timeout=10)
        receivers.close()
        dbs.drop()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _notify_answers(system: System) -> bool:
    for label, proc in system.processes.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{label} exited\n{system.log_tail()}")
    answer = requests.get(system.base_url + "/api/v1/health", timeout=5).json()
    return answer["services"]["notify"].get("ok")


def publish(world, event_type: str, data: dict, case_no: str | None) -> bytes:
    _, body = wire(event_type, data, case_no)
    publish_bodies(world, event_type, [body])
    return body


def publish_bodies(world, event_type: str, bodies: list[bytes]) -> None:
    world["publisher"].publish([
        Outgoing(exchange=f"{spec(event_type).producer}.events", routing_key=event_type, body=body,
                 message_id=json.loads(body)["event_id"], correlation_id=json.loads(body)["correlation_id"])
        for body in bodies])


def deliveries(world, case_no: str) -> list[dict]:
    response = world["system"].get(f"/api/v1/cases/{case_no}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def wait_deliveries(world, case_no: str, predicate, what: str, timeout: float = 30) -> list[dict]:
    def check():
        found = deliveries(world, case_no)
        return found if found and predicate(found) else None

    return wait_until(check, timeout, interval=0.2, what=f"{case_no}: {what}")


def settled(found: list[dict]) -> bool:
    return all(d["status"] in ("sent", "failed", "skipped") for d in found)


def login(world, username: str) -> str:
    response = world["system"].post("/api/v1/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_the_directory_names_places_and_seeds_the_duty_roster(world):
    system = world["system"]
    snapshot = directory_snapshot(version=1)
    snapshot["places"]["staff"] = STAFF
    publish(world, "directory_updated", snapshot, None)

    def roster():
        entries = system.get("/api/v1/notify/duty").json()["entries"]
        return entries if {e["staff_id"] for e in entries} == {SUPERVISOR["id"], COUNTY_SUPERVISOR["id"]} else None

    entries = wait_until(roster, 20, what="the default roster from the directory")
    assert {(e["role"], e["township"], e["staff_id"]) for e in entries} == {
        ("on_duty", "371324-001", SUPERVISOR["id"]), ("supervisor", "371324-001", SUPERVISOR["id"]),
        ("on_duty", None, COUNTY_SUPERVISOR["id"]), ("supervisor", None, COUNTY_SUPERVISOR["id"])}
    assert all(e["phone"].count("*") == 4 and e["source"] == "default" for e in entries)

    head = login(world, "head-001")
    mine = system.get("/api/v1/notify/duty", token=head).json()["entries"]
    assert {e["township"] for e in mine} == {"371324-001", None}
    other = system.post("/api/v1/notify/duty", {"role": "on_duty", "township": "371324-002", "staff_id": "x"},
                        token=head)
    assert other.status_code == 403
    mediator = login(world, "mt-001-1")
    assert system.get("/api/v1/notify/duty", token=mediator).status_code == 403


def test_email_reaches_a_real_smtp_server(world):
    case_no = "371324-20261201-100001"
    publish(world, "supervision_opened", payloads(case_no)["supervision_opened"], case_no)
    found = wait_deliveries(world, case_no, lambda ds: settled(ds) and len(ds) == 4, "4 deliveries settled")
    emails = {d["id"]: d for d in found if d["channel"] == "email"}
    assert {d["status"] for d in emails.values()} == {"sent"} and len(emails) == 2
    assert {d["recipient"] for d in emails.values()} == {f"{privacy.mask_name(UNIT['name'])} l***@lanling.gov.cn",
                                                        "赵** z***@lanling.gov.cn"}

    box = mailbox.Maildir(world["maildir"])
    received = [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.keys()]
    messages = [m for m in received if case_no in m["Subject"]]
    # a long header may be folded (RFC 5322): a receiver reads it unfolded and stripped
    assert sorted(m["X-Idempotency-Key"].strip() for m in messages) == sorted(emails)
    assert sorted(m["To"] for m in messages) == sorted([UNIT["email"], SUPERVISOR["email"]])
    mailer = SmtpEmail("unused", sender="兰陵县人民调解中心 <noreply@lanling.local>")
    for message in messages:
        assert message["Message-ID"] == mailer.message_id(message["X-Idempotency-Key"].strip())
        text = message.get_content()
        assert case_no in text and "超期未办结" in text and "督办" in text
        assert not any(phone in text for phone in PHONES)


def test_sms_and_push_fail_then_get_through_with_the_same_key(world):
    system, receivers = world["system"], world["receivers"]
    case_no = "371324-20261201-100002"
    receivers.fail_first |= {MEDIATOR["phone"], MEDIATOR["id"]}
    data = {**payloads(case_no)["case_assigned"], "assignees": [MEDIATOR]}
    publish(world, "case_assigned", data, case_no)
    found = wait_deliveries(world, case_no, lambda ds: settled(ds) and len(ds) == 3, "3 deliveries settled")

    by_channel = {d["channel"]: d for d in found}
    for channel, path in (("sms", "/sms"), ("app_push", "/push")):
        delivery = by_channel[channel]
        assert (delivery["status"], delivery["attempts"]) == ("sent", 2)
        assert [t["outcome"] for t in delivery["tries"]] == ["transient_failure", "sent"]
        tries = [r for r in receivers.requests if r["key"] == delivery["id"]]
        assert [r["status"] for r in tries] == [503, 200] and {r["path"] for r in tries} == {path}
        assert tries[0]["raw"] == tries[1]["raw"]   # the same message, byte for byte
        assert receivers.accepted[delivery["id"]]["idempotency_key"] == delivery["id"]
    sms = receivers.accepted[by_channel["sms"]["id"]]
    assert sms["to"] == MEDIATOR["phone"] and sms["sign"] == "【兰陵调解】" and case_no in sms["text"]
    sms_request = next(r for r in receivers.requests if r["key"] == by_channel["sms"]["id"])
    assert sms_request["headers"]["Authorization"] == f"Bearer {SMS_KEY}"
    push_request = next(r for r in receivers.requests if r["key"] == by_channel["app_push"]["id"])
    expected = "sha256=" + hmac.new(PUSH_SECRET.encode(), push_request["raw"], hashlib.sha256).hexdigest()
    assert push_request["headers"]["X-Lanling-Signature"] == expected

    # the in-app inbox: the mediator's own messages, paginated, marked read
    token = login(world, "mt-001-1")
    inbox = system.get("/api/v1/inbox?per_page=5&unread=true", token=token).json()
    message = next(m for m in inbox["items"] if m["case_no"] == case_no)
    assert message["subject"].startswith("新案件待签收") and not message["read"]
    assert system.post(f"/api/v1/inbox/{message['id']}/read", token=token).json() == {"marked": 1}
    after = system.get("/api/v1/inbox", token=token).json()
    assert next(m for m in after["items"] if m["id"] == message["id"])["read"]
    assert system.get("/api/v1/inbox").status_code == 403   # the operator key has no inbox
    assert requests.get(system.base_url + "/api/v1/inbox", timeout=10).status_code == 401


def test_a_permanent_failure_is_reported_for_the_case_history(world):
    receivers = world["receivers"]
    case_no = "371324-20261201-100003"
    receivers.reject.add(REJECTED_PHONE)
    data = {**payloads(case_no)["counsellor_offered"], "counsellor": {**COUNSELLOR, "phone": REJECTED_PHONE}}
    publish(world, "counsellor_offered", data, case_no)
    found = wait_deliveries(world, case_no, lambda ds: settled(ds) and len(ds) == 3, "3 deliveries settled")
    sms = next(d for d in found if d["channel"] == "sms")
    assert (sms["status"], sms["attempts"]) == ("failed", 1) and "HTTP 400" in sms["last_error"]
    assert sms["recipient"] == "孙* 137****0009"

    failed = _drain(world, "mediation.notification_failed")
    reported = [e for e in failed if e["data"]["delivery_id"] == sms["id"]]
    assert len(reported) == 1 and reported[0]["data"]["recipient"] == "孙* 137****0009"
    listed = world["system"].get("/api/v1/notify/deliveries?status=failed").json()["deliveries"]
    assert sms["id"] in {d["id"] for d in listed}


def _drain(world, queue: str) -> list[dict]:
    """Take what waits in one of mediation's queues (mediation is not running here)."""
    from kombu import Connection

    with Connection(world["system"].env["AMQP_URI"]) as conn:
        simple = conn.SimpleQueue(queue, no_ack=True)
        found = []
        try:
            while True:
                found.append(json.loads(simple.get(timeout=1).body))
        except simple.Empty:
            pass
        simple.close()
    return found


def test_a_citizen_opts_out_with_their_case_number_and_phone(world):
    system, receivers = world["system"], world["receivers"]
    case_no = "371324-20261201-100004"
    data = payloads(case_no)
    publish(world, "case_received", data["case_received"], case_no)
    wait_deliveries(world, case_no, lambda ds: settled(ds) and len(ds) == 2, "case_received delivered")

    anonymous = {"Content-Type": "application/json"}
    url = system.base_url + "/api/v1/notify/opt-outs"
    wrong = requests.post(url, json={"case_no": case_no, "phone": "13900000000", "channels": ["sms"]}, timeout=10)
    assert wrong.status_code == 404 and wrong.json()["error"] == "not_found"
    right = requests.post(url, json={"case_no": case_no, "phone": "138 1234 5678", "channels": ["sms"]},
                          headers=anonymous, timeout=10)
    assert right.status_code == 200 and right.json() == {"recipient": "138****5678", "opted_out": ["sms"]}

    publish(world, "evaluation_requested", data["evaluation_requested"], case_no)
    publish(world, "case_closed", data["case_closed"], case_no)
    found = wait_deliveries(world, case_no, lambda ds: settled(ds) and len(ds) == 6, "6 deliveries settled")
    status = {(d["event_type"], d["channel"]): (d["status"], d["reason"]) for d in found}
    assert status[("evaluation_requested", "sms")] == ("skipped", "opted_out")
    assert status[("evaluation_requested", "app_push")] == ("sent", None)
    assert status[("case_closed", "sms")] == ("sent", None)   # 办结告知 is owed to them
    skipped = next(d["id"] for d in found if d["event_type"] == "evaluation_requested" and d["channel"] == "sms")
    assert skipped not in receivers.keys()
    back = requests.delete(url, json={"case_no": case_no, "phone": COMPLAINANT["phone"], "channels": ["sms"]},
                           timeout=10)
    assert back.json()["opted_out"] == []

    token = login(world, "mt-001-1")
    assert system.post("/api/v1/notify/opt-outs", {"channels": ["app_push"]}, token=token).json()["opted_out"] == [
        "app_push"]
    assert system.get("/api/v1/notify/opt-outs", token=token).json() == {"opted_out": ["app_push"]}


def test_kill_9_mid_batch_and_redelivery_leave_one_record_and_every_key_once(world):
    system, receivers = world["system"], world["receivers"]
    batch = 25
    stamp = datetime.now(timezone.utc).strftime("%H%M%S")
    cases = [f"371324-20261201-9{stamp[-4:]}{i:02d}" for i in range(batch)]
    bodies = [wire("case_urgent", payloads(case_no)["case_urgent"], case_no)[1] for case_no in cases]
    event_ids = [json.loads(b)["event_id"] for b in bodies]
    external = {f"{e}:{who}:{ch}" for e in event_ids for who in (SUPERVISOR["id"], COUNTY_SUPERVISOR["id"])
                for ch in ("sms", "app_push")}

    def batch_keys():
        return [k for k in receivers.keys() if k.split(":")[0] in set(event_ids)]

    publish_bodies(world, "case_urgent", bodies)
    at_kill = wait_until(lambda: len(set(batch_keys())) >= 20 and len(set(batch_keys())), 60,
                         interval=0.02, what="a fifth of the batch sent")
    system.kill("notify", signal.SIGKILL)
    sent_before_restart = len(set(batch_keys()))
    system.start("notify")
    publish_bodies(world, "case_urgent", bodies)   # the producer's relay publishes them again

    wait_until(lambda: set(batch_keys()) >= external, 90, interval=0.3, what="every key of the batch received")
    records = {case_no: wait_deliveries(world, case_no, lambda ds: settled(ds) and len(ds) == 6, "6 settled")
               for case_no in cases}
    keys = [d["id"] for found in records.values() for d in found]
    assert len(keys) == len(set(keys)) == 6 * batch                           # one record per delivery
    assert {d["status"] for found in records.values() for d in found} == {"sent"}
    assert {k for k in keys if not k.endswith(":inbox")} == external == set(batch_keys())   # none missing
    accepted = [k for k in receivers.accepted if k in external]
    assert len(accepted) == len(external)                                     # each accepted once, by key
    resent = Counter(batch_keys())
    print(f"\nkill -9 after {at_kill}/{len(external)} keys ({sent_before_restart} when it died); "
          f"{sum(resent.values())} requests for {len(resent)} keys; "
          f"{sum(1 for n in resent.values() if n > 1)} keys sent more than once")

    head = login(world, "head-001")
    inbox = system.get("/api/v1/inbox?per_page=100", token=head).json()
    assert len([m for m in inbox["items"] if m["case_no"] in set(cases)]) == batch   # once per case, no copy


def test_logs_and_answers_show_no_phone_in_clear(world):
    logs = "\n".join(p.read_text(errors="replace") for p in (world["workdir"] / "logs").glob("*.log"))
    assert "notification" in logs or "sms to" in logs
    assert not any(phone in logs for phone in PHONES + [REJECTED_PHONE])
    assert "371324199001011234" not in logs
