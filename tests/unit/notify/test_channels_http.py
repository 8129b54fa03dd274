"""SMS gateway and app-push webhook against a real local HTTP server that fails, then succeeds."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.notify.channels import (HttpSmsGateway, Outcome, OutgoingMessage, RetryPolicy, SendResult,
                                      WebhookPush)


class Receiver:
    """A provider: answers each request from a script, remembers every request, dedupes by key."""

    def __init__(self):
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}    # what the provider actually passes on, once per key
        self.statuses: list[int] = []           # scripted answers, then 200 for ever
        self.fail_first_attempt_with: int | None = None
        self.hang = threading.Event()           # set: hold the answer until `release` is set
        self.release = threading.Event()
        self.lock = threading.Lock()

    def answer(self, headers, raw: bytes) -> int:
        with self.lock:
            body = json.loads(raw)
            key = headers.get("Idempotency-Key")
            seen_before = any(r["key"] == key for r in self.requests)
            self.requests.append({"key": key, "headers": dict(headers), "body": body, "raw": raw})
            if self.statuses:
                status = self.statuses.pop(0)
            elif self.fail_first_attempt_with and not seen_before:
                status = self.fail_first_attempt_with
            else:
                status = 200
            if status == 200:
                self.delivered.setdefault(key, body)
            return status


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.answer(self.headers, raw)
            if state.hang.is_set():
                state.release.wait(10)
            payload = b'{"ok": true}' if status == 200 else b'{"error": "busy"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def deliver(channel, message, policy: RetryPolicy) -> tuple[SendResult, int]:
    """What the service does with one delivery: retry transient failures on the policy's clock."""
    now = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    attempt = 0
    while True:
        attempt += 1
        result = channel.send(message)
        if result.outcome is not Outcome.TRANSIENT_FAILURE:
            return result, attempt
        next_at = policy.next_attempt_at(attempt, now)
        if next_at is None:
            return SendResult(Outcome.PERMANENT_FAILURE, f"gave up: {result.detail}"), attempt
        assert next_at > now
        now = next_at   # the clock moves; nobody sleeps


def sms(n: int) -> OutgoingMessage:
    return OutgoingMessage(idempotency_key=f"evt-{n:04d}:citizen-ab{n}:sms", recipient=f"1391234{n:04d}",
                           subject=None, body=f"您的案件371324-20261201-{n:06d}已受理,调解员将尽快联系您。")


POLICY = RetryPolicy(initial_seconds=30, max_seconds=600, max_attempts=4)


def test_sms_gateway_retries_503_and_delivers_each_message_once(receiver):
    receiver.fail_first_attempt_with = 503
    gateway = HttpSmsGateway(receiver.url, api_key="k-123", signature="【兰陵调解】", timeout=5)
    outcomes = [deliver(gateway, sms(n), POLICY) for n in range(1, 6)]
    assert [(r.outcome, attempts) for r, attempts in outcomes] == [(Outcome.SENT, 2)] * 5
    assert len(receiver.requests) == 10
    assert len({r["key"] for r in receiver.requests}) == len(receiver.delivered) == 5
    first = receiver.requests[0]
    assert first["headers"]["Authorization"] == "Bearer k-123"
    assert first["body"] == {"to": "13912340001", "text": sms(1).body, "sign": "【兰陵调解】",
                             "idempotency_key": sms(1).idempotency_key}
    assert first["headers"]["Idempotency-Key"] == first["body"]["idempotency_key"]


def test_a_resend_after_a_crash_reaches_the_receiver_under_the_same_key(receiver):
    gateway = HttpSmsGateway(receiver.url, timeout=5)
    for n in (1, 2, 3):
        assert gateway.send(sms(n)).sent
    for n in (2, 3):           # notify restarted before it recorded these as sent
        assert gateway.send(sms(n)).sent
    assert len(receiver.requests) == 5
    assert len({r["key"] for r in receiver.requests}) == len(receiver.delivered) == 3


def test_basic_credentials(receiver):
    HttpSmsGateway(receiver.url, basic_auth=("lanling", "s3cret"), timeout=5).send(sms(1))
    expected = "Basic " + base64.b64encode(b"lanling:s3cret").decode()
    assert receiver.requests[0]["headers"]["Authorization"] == expected


@pytest.mark.parametrize("status, outcome", [
    (400, Outcome.PERMANENT_FAILURE), (401, Outcome.PERMANENT_FAILURE), (404, Outcome.PERMANENT_FAILURE),
    (429, Outcome.TRANSIENT_FAILURE), (500, Outcome.TRANSIENT_FAILURE), (503, Outcome.TRANSIENT_FAILURE),
])
def test_status_codes(receiver, status, outcome):
    receiver.statuses = [status]
    result = HttpSmsGateway(receiver.url, timeout=5).send(sms(1))
    assert result.outcome is outcome
    assert str(status) in result.detail


def test_a_permanent_failure_is_not_retried(receiver):
    receiver.statuses = [400]
    result, attempts = deliver(HttpSmsGateway(receiver.url, timeout=5), sms(1), POLICY)
    assert (result.outcome, attempts, len(receiver.requests)) == (Outcome.PERMANENT_FAILURE, 1, 1)


def test_retries_stop_after_max_attempts(receiver):
    receiver.statuses = [503] * 10
    result, attempts = deliver(HttpSmsGateway(receiver.url, timeout=5), sms(1), POLICY)
    assert (result.outcome, attempts, len(receiver.requests)) == (Outcome.PERMANENT_FAILURE, 4, 4)


def test_a_timeout_is_transient(receiver):
    receiver.hang.set()
    result = HttpSmsGateway(receiver.url, timeout=0.3).send(sms(1))
    assert result.outcome is Outcome.TRANSIENT_FAILURE and "timeout" in result.detail


def test_a_refused_connection_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = HttpSmsGateway(f"http://127.0.0.1:{port}/send", timeout=2).send(sms(1))
    assert result.outcome is Outcome.TRANSIENT_FAILURE


def test_webhook_push_is_signed_retried_and_deduplicable(receiver):
    receiver.fail_first_attempt_with = 503
    push = WebhookPush(receiver.url, secret="push-secret", timeout=5)
    messages = [OutgoingMessage(f"evt-0003:M-01{n}:app_push", f"pa-01{n}", "新案件待签收",
                                "案件371324-20261201-000123(卞庄街道·劳动争议)已派给您。", "371324-20261201-000123")
                for n in range(3)]
    assert all(deliver(push, m, POLICY)[0].sent for m in messages)
    assert len(receiver.requests) == 6 and len(receiver.delivered) == 3
    for request in receiver.requests:
        expected = hmac.new(b"push-secret", request["raw"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Lanling-Signature"] == f"sha256={expected}"
        assert request["headers"]["Idempotency-Key"] == request["body"]["idempotency_key"]
    first, retry = (r for r in receiver.requests if r["key"] == messages[0].idempotency_key)
    assert first["raw"] == retry["raw"]     # byte-identical retries
    assert first["body"]["title"] == "新案件待签收" and first["body"]["case_no"] == "371324-20261201-000123"


def test_webhook_without_a_secret_sends_no_signature(receiver):
    WebhookPush(receiver.url, timeout=5).send(OutgoingMessage("k", "pa-1", "t", "b"))
    assert "X-Lanling-Signature" not in receiver.requests[0]["headers"]
