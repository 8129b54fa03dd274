"""The fault suite's stream of cases: county systems submitting through the gateway (HTTP) and the
AMQP ingress, the way outside systems do, retrying until their submission is answered.

    python -m tests.faults.load < settings.json

Runs in its own process with plain threads (no eventlet). Settings: base_url, api_key,
amqp_uri (the broker directly, as the source system's own broker user), user, rate (per
second, both ways together), out (JSON lines), stop_file, seed, run_id.

Every submission is written to `out` once answered: {"kind": "accepted", way, channel,
reference, case_no, status, at}, or {"kind": "rejected", ..., "error"} for a 4xx / a rejected
result (the stream is valid, so the test counts those as failures). An AMQP message the broker
confirmed but whose result never came is written as {"kind": "unanswered", ...} at the end.
- HTTP: 2xx is an answer; a 503, 429, 5xx, a timeout or a refused connection is retried with the
  same body (the same reference gets the first answer back, DESIGN §3).
- AMQP: published with confirms; a publish that was not confirmed (the connection dropped) is
  published again with the same message_id (intake deduplicates on it); results are read from a
  durable queue of the source system's own, bound to `intake.ingress.results`.
When `stop_file` appears the stream stops, in-flight work is finished, and the process exits.
"""
from __future__ import annotations

import json
import queue
import random
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pika
import requests

CHANNELS = ("hotline", "petition", "opinion", "app", "grid", "walkin")
REPEAT_SHARE = 0.08


class Out:
    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, record: dict) -> None:
        with self.lock:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()


def plan(settings: dict):
    """An endless stream of (channel, payload) over every channel, some disputes reported twice."""
    from services.contracts.channels import reference_field
    from services.intake.synthetic import Generator
    from services.routing.directory import Directory

    rng = random.Random(settings.get("seed", 11))
    generator = Generator(Directory.from_reference().places_snapshot(), seed=rng.randrange(10**6),
                          tag=settings["run_id"])
    recent, disputes = [], 0
    while True:
        at = datetime.now(timezone.utc) - timedelta(seconds=rng.uniform(30, 3600))
        if recent and rng.random() < REPEAT_SHARE:
            dispute, used = rng.choice(recent)
            options = [c for c in CHANNELS if c not in used and (c != "grid" or dispute.grid)]
            if options:
                channel = rng.choice(options)
                used.append(channel)
                payload = generator.submission(dispute, channel, at, first=False)
            else:
                continue
        else:
            dispute = generator.dispute(urgent_rate=0.02)
            disputes += 1
            channel = CHANNELS[disputes % len(CHANNELS)]  # every channel in turn
            if channel == "grid" and not dispute.grid:
                channel = rng.choice([c for c in CHANNELS if c != "grid"])
            payload = generator.submission(dispute, channel, at)
            recent.append((dispute, [channel]))
            recent = recent[-40:]
        field = reference_field(channel)
        yield channel, field, payload


class Http:
    def __init__(self, settings: dict, out: Out):
        self.url = settings["base_url"] + "/api/v1/submissions/"
        self.headers = {"X-Api-Key": settings["api_key"]}
        self.out = out
        self.work: queue.Queue = queue.Queue()
        self.retries = 0
        self.statuses: dict[str, int] = {}  # every status answered, retried ones included
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(8)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        session = requests.Session()
        while True:
            item = self.work.get()
            if item is None:
                return
            channel, field, payload = item
            deadline = time.monotonic() + 600
            while True:
                try:
                    response = session.post(self.url + channel, json=payload, headers=self.headers, timeout=15)
                    status = response.status_code
                except requests.RequestException as exc:
                    status, response = 0, exc
                self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
                if status in (200, 202):
                    body = response.json()
                    self.out.write({"kind": "accepted", "way": "http", "channel": channel,
                                    "reference": payload[field], "case_no": body["case_no"],
                                    "status": body["status"], "at": time.time()})
                    break
                if 400 <= status < 500 and status != 429 or time.monotonic() > deadline:
                    self.out.write({"kind": "rejected", "way": "http", "channel": channel,
                                    "reference": payload[field], "status": status,
                                    "error": response.text[:300] if status else repr(response)})
                    break
                self.retries += 1
                time.sleep(0.5)

    def close(self) -> None:
        for _ in self.threads:
            self.work.put(None)
        for t in self.threads:
            t.join()


class Amqp:
    """One connection publishes with confirms; another reads the results (pika is not thread-safe)."""

    def __init__(self, settings: dict, out: Out):
        self.params = pika.URLParameters(settings["amqp_uri"])
        self.params.heartbeat = 10
        self.params.blocked_connection_timeout = 30
        self.user = settings["user"]
        self.queue = f"ingress.{self.user}.results"
        self.out = out
        self.work: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.waiting: dict[str, tuple] = {}  # message_id -> (channel, reference): confirmed, no result yet
        self.answered: set[str] = set()
        self.republished = 0
        self.reconnects = 0
        self.stopping = False
        self._declare()
        self.publisher = threading.Thread(target=self._publish_loop, daemon=True)
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.publisher.start()
        self.reader.start()

    def _connect(self):
        while True:
            try:
                return pika.BlockingConnection(self.params)
            except pika.exceptions.AMQPError:
                self.reconnects += 1
                time.sleep(0.5)

    def _declare(self) -> None:
        connection = self._connect()
        channel = connection.channel()
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, "intake.ingress.results", routing_key=f"{self.user}.#")
        connection.close()

    def _publish_loop(self) -> None:
        connection = channel = None
        while True:
            item = self.work.get()
            if item is None:
                break
            message_id, channel_name, field, payload = item
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            properties = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                              message_id=message_id, user_id=self.user)
            attempts = 0
            while True:
                try:
                    if connection is None or connection.is_closed:
                        connection = self._connect()
                        channel = connection.channel()
                        channel.confirm_delivery()
                    with self.lock:  # before the publish: the result may come before the confirm
                        self.waiting[message_id] = (channel_name, payload[field])
                    channel.basic_publish("intake.ingress", f"{channel_name}.submitted", body, properties,
                                          mandatory=True)
                    break
                except (pika.exceptions.AMQPError, OSError) as exc:  # not confirmed: publish it again
                    attempts += 1
                    self.republished += 1
                    if isinstance(exc, pika.exceptions.UnroutableError):
                        time.sleep(0.5)  # the ingress queue is not declared yet (broker restarted empty?)
                    try:
                        if connection is not None and connection.is_open:
                            connection.close()
                    except Exception:  # noqa: BLE001
                        pass
                    connection = None
                    time.sleep(0.2)
        if connection is not None and connection.is_open:
            connection.close()

    def _read_loop(self) -> None:
        while not self.stopping:
            try:
                connection = self._connect()
                channel = connection.channel()
                channel.basic_qos(prefetch_count=200)
                for method, properties, body in channel.consume(self.queue, inactivity_timeout=0.5):
                    if method is not None:
                        self._result(properties.correlation_id, method.routing_key, json.loads(body))
                        channel.basic_ack(method.delivery_tag)
                    if self.stopping:
                        break
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                self.reconnects += 1
                time.sleep(0.5)

    def _result(self, message_id: str, routing_key: str, body: dict) -> None:
        with self.lock:
            if message_id in self.answered:
                return  # a result published twice (at least once): the first one counts
            self.answered.add(message_id)
            channel, reference = self.waiting.pop(message_id, (routing_key.split(".")[1], body.get("reference")))
        if body.get("status") in ("accepted", "merged") and body.get("case_no"):
            self.out.write({"kind": "accepted", "way": "amqp", "channel": channel, "reference": reference,
                            "case_no": body["case_no"], "status": "received" if body["status"] == "accepted"
                            else "merged", "message_id": message_id, "at": time.time()})
        else:
            self.out.write({"kind": "rejected", "way": "amqp", "channel": channel, "reference": reference,
                            "message_id": message_id, "error": body.get("error")})

    def close(self, timeout: float) -> None:
        self.work.put(None)
        self.publisher.join()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.waiting:
                    break
            time.sleep(0.2)
        self.stopping = True
        self.reader.join(timeout=10)
        with self.lock:
            for message_id, (channel, reference) in self.waiting.items():
                self.out.write({"kind": "unanswered", "way": "amqp", "channel": channel, "reference": reference,
                                "message_id": message_id})


def main() -> None:
    import os
    import uuid

    settings = json.load(sys.stdin)
    out = Out(settings["out"])
    http, amqp = Http(settings, out), Amqp(settings, out)
    interval = 1.0 / settings["rate"]
    started = time.monotonic()
    sent = {"http": 0, "amqp": 0}
    for n, (channel, field, payload) in enumerate(plan(settings)):
        if os.path.exists(settings["stop_file"]):
            break
        due = started + n * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if n % 2 == 0:
            http.work.put((channel, field, payload))
            sent["http"] += 1
        else:
            amqp.work.put((str(uuid.uuid4()), channel, field, payload))
            sent["amqp"] += 1
    http.close()
    amqp.close(timeout=settings.get("drain_timeout", 240))
    print(json.dumps({"submitted": sent, "http_retries": http.retries, "http_statuses": http.statuses, "amqp_republished": amqp.republished,
                      "amqp_reconnects": amqp.reconnects}), flush=True)


if __name__ == "__main__":
    main()
