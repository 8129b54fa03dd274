"""Channels to the outside world, behind one interface: `Channel.send(OutgoingMessage) -> SendResult`.

A send cannot be exactly-once across a crash (DESIGN §4.12): every attempt of one delivery
carries the same idempotency key, the receiver deduplicates on it, and the caller retries
transient failures with `next_attempt_at` until it gives up (a permanent failure).

Configuration (`channels_from_env`; nothing is read at import):
    NOTIFY_SMS_URL          HTTP SMS gateway endpoint; unset -> LocalSmsSink (a JSON-lines file)
    NOTIFY_SMS_KEY          API key, sent as "Authorization: Bearer <key>"
    NOTIFY_SMS_USER, NOTIFY_SMS_PASSWORD   HTTP basic credentials, instead of the key
    NOTIFY_SMS_SIGN         SMS signature, default 【兰陵调解】
    NOTIFY_SMS_TIMEOUT      seconds, default 10
    NOTIFY_SMTP_HOST        SMTP server; unset -> e-mails go to a local JSON-lines sink
    NOTIFY_SMTP_PORT        default 465 with NOTIFY_SMTP_SSL, 587 with STARTTLS, else 25
    NOTIFY_SMTP_USER, NOTIFY_SMTP_PASSWORD   login, when the server needs one
    NOTIFY_SMTP_FROM        sender, default "兰陵县人民调解中心 <noreply@lanling.local>"
    NOTIFY_SMTP_STARTTLS    "true"/"false", default true
    NOTIFY_SMTP_SSL         "true" for implicit TLS (port 465), default false
    NOTIFY_SMTP_TIMEOUT     seconds, default 15
    NOTIFY_PUSH_URL         app push webhook; unset -> a local JSON-lines sink
    NOTIFY_PUSH_SECRET      HMAC-SHA256 key; signs the body in header X-Lanling-Signature
    NOTIFY_PUSH_TIMEOUT     seconds, default 10
    NOTIFY_SINK_DIR         where the local sinks write, default <var>/notify
    NOTIFY_RETRY_INITIAL_SECONDS  first retry delay, default 30
    NOTIFY_RETRY_MAX_SECONDS      cap on one delay, default 3600
    NOTIFY_MAX_ATTEMPTS           attempts before a delivery fails for good, default 8
"""
from __future__ import annotations

import enum
import fcntl
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Protocol

import requests
import tenacity

from services.common import config, privacy
from services.notify.rules import mask_contact
from services.notify.templates import DEFAULT_SMS_SIGNATURE, sms_text

log = logging.getLogger("lanling.notify.channels")

DETAIL_CHARS = 300


class Outcome(str, enum.Enum):
    SENT = "sent"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_FAILURE = "permanent_failure"


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str       # the delivery key: the same for every attempt of one delivery
    recipient: str             # phone, e-mail address, app user id or inbox owner id
    subject: str | None
    body: str
    case_no: str | None = None  # lets the app open the case from a push


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""           # masked: safe for logs and the case history

    @property
    def sent(self) -> bool:
        return self.outcome is Outcome.SENT

    @classmethod
    def of(cls, outcome: Outcome, detail: str) -> "SendResult":
        detail = privacy.mask_text(detail) or ""
        return cls(outcome, detail if len(detail) <= DETAIL_CHARS else detail[:DETAIL_CHARS] + "…")


class Channel(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> SendResult: ...


class Inbox(Channel, Protocol):
    """The in-app inbox (`GET /api/v1/inbox`), written by the service in notify's database.

    It must satisfy Channel with name "inbox": `send` stores one row per idempotency key
    (unique constraint; a second send with the same key is SENT without a second row), owned
    by `message.recipient` (a directory id), with subject, body, case_no and a read flag. Since
    it lives in notify's own database it can be written in the transaction that records the
    delivery, so the inbox alone is exactly-once.
    """


# --- HTTP: the SMS gateway and the app-push webhook ----------------------------------------

TRANSIENT_HTTP = {408, 425, 429}


def _encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _post_json(session: requests.Session, url: str, body: bytes, headers: dict, timeout: float,
               auth=None) -> SendResult:
    headers = {"Content-Type": "application/json; charset=utf-8", **headers}
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout, auth=auth)
    except requests.Timeout as exc:
        return SendResult.of(Outcome.TRANSIENT_FAILURE, f"timeout: {exc.__class__.__name__}")
    except requests.ConnectionError as exc:
        return SendResult.of(Outcome.TRANSIENT_FAILURE, f"connection failed: {exc.__class__.__name__}")
    detail = f"HTTP {response.status_code} {response.text[:200]}".strip()
    if 200 <= response.status_code < 300:
        return SendResult.of(Outcome.SENT, detail)
    if response.status_code in TRANSIENT_HTTP or response.status_code >= 500:
        return SendResult.of(Outcome.TRANSIENT_FAILURE, detail)
    return SendResult.of(Outcome.PERMANENT_FAILURE, detail)


def _signature_headers(body: bytes, secret: str | None) -> dict:
    if not secret:
        return {}
    return {"X-Lanling-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


class HttpSmsGateway:
    """POSTs {to, text, sign, idempotency_key} as JSON, with an Idempotency-Key header.
    2xx: sent; 408/425/429/5xx, timeouts and refused connections: transient; other 4xx: permanent."""

    name = "sms"

    def __init__(self, url: str, *, api_key: str | None = None, basic_auth: tuple[str, str] | None = None,
                 signature: str = DEFAULT_SMS_SIGNATURE, timeout: float = 10.0,
                 session: requests.Session | None = None):
        self.url = url
        self.api_key = api_key
        self.basic_auth = basic_auth
        self.signature = signature
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, message: OutgoingMessage) -> SendResult:
        payload = {"to": message.recipient, "text": message.body, "sign": self.signature,
                   "idempotency_key": message.idempotency_key}
        headers = {"Idempotency-Key": message.idempotency_key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        result = _post_json(self.session, self.url, _encode(payload), headers, self.timeout, auth=self.basic_auth)
        _log_result(self.name, message, result)
        return result


class WebhookPush:
    """App push (平安临沂 / 兰陵首发): POSTs {to, title, body, case_no, idempotency_key} as JSON
    with an Idempotency-Key header and, when a secret is set, X-Lanling-Signature:
    "sha256=" + HMAC-SHA256(secret, raw body). The body is byte-identical on every retry."""

    name = "app_push"

    def __init__(self, url: str, *, secret: str | None = None, timeout: float = 10.0,
                 session: requests.Session | None = None):
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.session = session or requests.Session()

    def send(self, message: OutgoingMessage) -> SendResult:
        payload = {"to": message.recipient, "title": message.subject, "body": message.body,
                   "case_no": message.case_no, "idempotency_key": message.idempotency_key}
        body = _encode(payload)
        headers = {"Idempotency-Key": message.idempotency_key, **_signature_headers(body, self.secret)}
        result = _post_json(self.session, self.url, body, headers, self.timeout)
        _log_result(self.name, message, result)
        return result


# --- SMTP ----------------------------------------------------------------------------------

class SmtpEmail:
    """Plain-text UTF-8 e-mail through smtplib. The Message-ID is derived from the idempotency
    key, so a resent e-mail has the same Message-ID and the receiver can drop the copy.
    SMTP 5xx, and a server that cannot do what is configured (STARTTLS): permanent; 4xx, lost
    connections and timeouts: transient."""

    name = "email"

    def __init__(self, host: str, port: int = 25, *, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = True, use_ssl: bool = False,
                 timeout: float = 15.0):
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = timeout

    def message_id(self, idempotency_key: str) -> str:
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "lanling.local"
        return f"<{hashlib.sha256(idempotency_key.encode('utf-8')).hexdigest()[:40]}@{domain}>"

    def build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = Address(addr_spec=message.recipient)
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False, usegmt=True)
        email["Message-ID"] = self.message_id(message.idempotency_key)
        email["X-Idempotency-Key"] = message.idempotency_key
        email.set_content(message.body, charset="utf-8")
        return email

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            email = self.build(message)
            with self._connect() as smtp:
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(email)
            result = (SendResult.of(Outcome.SENT, f"accepted, Message-ID {email['Message-ID']}") if not refused
                      else _smtp_codes_result(refused))
        except smtplib.SMTPRecipientsRefused as exc:
            result = _smtp_codes_result(exc.recipients)
        except smtplib.SMTPResponseException as exc:
            result = _smtp_code_result(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            result = SendResult.of(Outcome.PERMANENT_FAILURE, f"server does not support it: {exc}")
        except ValueError as exc:   # an address the e-mail library cannot even write
            result = SendResult.of(Outcome.PERMANENT_FAILURE, f"invalid message: {exc}")
        except (smtplib.SMTPException, OSError) as exc:   # disconnects, refused connections, timeouts
            result = SendResult.of(Outcome.TRANSIENT_FAILURE, f"{exc.__class__.__name__}: {exc}")
        _log_result(self.name, message, result)
        return result

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


def _smtp_code_result(code: int, text: bytes | str) -> SendResult:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    outcome = Outcome.PERMANENT_FAILURE if 500 <= code < 600 else Outcome.TRANSIENT_FAILURE
    return SendResult.of(outcome, f"SMTP {code} {text}")


def _smtp_codes_result(refused: dict) -> SendResult:
    code, text = next(iter(refused.values()))
    return _smtp_code_result(code, text)


# --- Local sinks: what would have been sent, when no provider is configured ------------------

class LocalSink:
    """Appends one JSON line per message to a file, once per idempotency key, also across
    processes and restarts (an exclusive lock covers the check and the append). The
    recipient is masked: the file is for people to read."""

    def __init__(self, path: Path | str, name: str):
        self.path = Path(path)
        self.name = name
        self._seen: set[str] = set()
        self._read_up_to = 0

    def send(self, message: OutgoingMessage) -> SendResult:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as sink:
            fcntl.flock(sink, fcntl.LOCK_EX)
            try:
                self._catch_up(sink)
                if message.idempotency_key in self._seen:
                    result = SendResult.of(Outcome.SENT, f"already in {self.path.name}")
                else:
                    sink.write(json.dumps(self._record(message), ensure_ascii=False).encode("utf-8") + b"\n")
                    sink.flush()
                    self._read_up_to = sink.tell()
                    self._seen.add(message.idempotency_key)
                    result = SendResult.of(Outcome.SENT, f"written to {self.path.name}")
            finally:
                fcntl.flock(sink, fcntl.LOCK_UN)
        _log_result(self.name, message, result)
        return result

    def _catch_up(self, sink) -> None:
        """Learn the keys other processes wrote since we last looked; end a line a crash cut off."""
        sink.seek(self._read_up_to)
        for line in sink:
            if not line.endswith(b"\n"):
                sink.write(b"\n")
                log.warning("%s: ended a line cut off by a crash", self.path)
                break
            try:
                self._seen.add(json.loads(line)["idempotency_key"])
            except (ValueError, KeyError):
                log.warning("%s: skipped an unreadable line", self.path)
        self._read_up_to = sink.tell()

    def _record(self, message: OutgoingMessage) -> dict:
        return {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "idempotency_key": message.idempotency_key, "channel": self.name,
                "to": mask_contact(self.name, message.recipient), "case_no": message.case_no,
                "subject": message.subject, "text": message.body}


class LocalSmsSink(LocalSink):
    """The default SMS channel: the file shows each SMS as the phone would, signature included."""

    def __init__(self, path: Path | str, signature: str = DEFAULT_SMS_SIGNATURE):
        super().__init__(path, "sms")
        self.signature = signature

    def _record(self, message: OutgoingMessage) -> dict:
        return {**super()._record(message), "text": sms_text(message.body, self.signature)}


# --- Retry -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    initial_seconds: float = 30.0
    max_seconds: float = 3600.0
    max_attempts: int = 8

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        return cls(initial_seconds=config.get_float("NOTIFY_RETRY_INITIAL_SECONDS", 30.0),
                   max_seconds=config.get_float("NOTIFY_RETRY_MAX_SECONDS", 3600.0),
                   max_attempts=config.get_int("NOTIFY_MAX_ATTEMPTS", 8))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped,
        with up to `initial_seconds` of jitter so a batch failing together does not retry together."""
        wait = tenacity.wait_exponential_jitter(multiplier=self.initial_seconds, max=self.max_seconds,
                                                jitter=self.initial_seconds)
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        return wait(state)

    def next_attempt_at(self, attempt: int, now: datetime) -> datetime | None:
        """When to try again after `attempt` failed transiently; None: give up (permanent failure)."""
        if attempt >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay(attempt))


def next_attempt_at(attempt: int, now: datetime, policy: RetryPolicy | None = None) -> datetime | None:
    return (policy or RetryPolicy.from_env()).next_attempt_at(attempt, now)


# --- Wiring ----------------------------------------------------------------------------------

def _flag(name: str, default: bool) -> bool:
    value = config.get(name)
    return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")


def channels_from_env() -> dict[str, Channel]:
    """sms, email and app_push from the environment (see the module docstring). The inbox is
    the service's own, database-backed channel: add it to the returned mapping."""
    sink_dir = Path(config.get("NOTIFY_SINK_DIR") or config.var_dir() / "notify")
    signature = config.get("NOTIFY_SMS_SIGN") or DEFAULT_SMS_SIGNATURE
    channels: dict[str, Channel] = {}

    sms_url = config.get("NOTIFY_SMS_URL")
    if sms_url:
        user = config.get("NOTIFY_SMS_USER")
        channels["sms"] = HttpSmsGateway(
            sms_url, api_key=config.get("NOTIFY_SMS_KEY") or None,
            basic_auth=(user, config.get("NOTIFY_SMS_PASSWORD") or "") if user else None,
            signature=signature, timeout=config.get_float("NOTIFY_SMS_TIMEOUT", 10.0))
    else:
        channels["sms"] = LocalSmsSink(sink_dir / "sms.jsonl", signature)

    smtp_host = config.get("NOTIFY_SMTP_HOST")
    if smtp_host:
        use_ssl = _flag("NOTIFY_SMTP_SSL", False)
        starttls = _flag("NOTIFY_SMTP_STARTTLS", True)
        channels["email"] = SmtpEmail(
            smtp_host, config.get_int("NOTIFY_SMTP_PORT", 465 if use_ssl else 587 if starttls else 25),
            sender=config.get("NOTIFY_SMTP_FROM") or "兰陵县人民调解中心 <noreply@lanling.local>",
            username=config.get("NOTIFY_SMTP_USER") or None, password=config.get("NOTIFY_SMTP_PASSWORD"),
            starttls=starttls, use_ssl=use_ssl, timeout=config.get_float("NOTIFY_SMTP_TIMEOUT", 15.0))
    else:
        channels["email"] = LocalSink(sink_dir / "email.jsonl", "email")

    push_url = config.get("NOTIFY_PUSH_URL")
    if push_url:
        channels["app_push"] = WebhookPush(push_url, secret=config.get("NOTIFY_PUSH_SECRET") or None,
                                           timeout=config.get_float("NOTIFY_PUSH_TIMEOUT", 10.0))
    else:
        channels["app_push"] = LocalSink(sink_dir / "push.jsonl", "app_push")
    return channels


def _log_result(channel: str, message: OutgoingMessage, result: SendResult) -> None:
    level = logging.INFO if result.sent else logging.WARNING
    log.log(level, "%s to %s key=%s: %s (%s)", channel, mask_contact(channel, message.recipient),
            message.idempotency_key, result.outcome.value, result.detail)
