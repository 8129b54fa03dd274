"""The AMQP ingress (DESIGN §3), as pure functions: who sent a message, on which channel,
and whether its bytes are a JSON object at all. No I/O; handlers.ingest does the rest.

A county system publishes to topic exchange `intake.ingress` with routing key
`<channel>.submitted`, `content_type` `application/json`, a unique `message_id` and its
own broker user in `user_id` (RabbitMQ refuses a `user_id` other than the connection's
user, so intake can trust it). Intake answers on `intake.ingress.results` with routing key
`<user>.<channel>.<accepted|merged|rejected>` and `correlation_id` = the `message_id`.

Limits, the same as over HTTP: a body of at most `MAX_SUBMISSION_BYTES` (256 KiB), valid
UTF-8, a JSON object, a known channel; the channel's schema does the rest.

A message comes back to the ingress queue through exchange `lanling.requeue` when it is
retried after a transient fault or replayed from `intake.ingress.dead` (`lanling dlq
replay`). Only the platform may publish there, so then, and only then, the original
routing key and user are read from the `x-original-*` headers.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from services.contracts.channels import CHANNELS, MAX_SUBMISSION_BYTES, unsafe_text

REQUEUE_EXCHANGE = "lanling.requeue"
RESULTS_EXCHANGE = "intake.ingress.results"
JSON_TYPES = ("application/json",)
MESSAGE_ID_MAX = 200
_ROUTING_WORD = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True)
class Envelope:
    """What the AMQP properties say about a message (nothing is checked yet)."""

    user: str | None            # the validated broker user that published it
    channel: str | None         # from `<channel>.submitted`
    message_id: str | None
    content_type: str | None
    content_encoding: str | None
    replayed: bool              # came back from the dead-letter queue by hand
    body_hash: str


class Rejected(Exception):
    """A message intake will never accept, with the error in the HTTP error shape."""

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}

    def error(self) -> dict:
        return {"error": self.code, "message": self.message, "fields": self.fields}

    def reason(self) -> str:
        """For the dead letter's `x-reason`: the code, the message and each field's reasons."""
        details = "; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in self.fields.items())
        return f"{self.code}: {self.message}" + (f" ({details})" if details else "")


def envelope(body: bytes, properties: dict) -> Envelope:
    headers = properties.get("headers") or {}
    via_requeue = properties.get("exchange") == REQUEUE_EXCHANGE
    if via_requeue:  # a retry or a replay: the platform put the origin in headers
        routing_key = _text(headers.get("x-original-routing-key")) or ""
        user = _text(headers.get("x-original-user-id"))
    else:
        routing_key = properties.get("routing_key") or ""
        user = _text(properties.get("user_id"))
    channel, _, verb = routing_key.rpartition(".")
    return Envelope(
        user=user or None,
        channel=channel if verb == "submitted" and channel else None,
        message_id=_text(properties.get("message_id")) or None,
        content_type=_text(properties.get("content_type")),
        content_encoding=_text(properties.get("content_encoding")),
        replayed=via_requeue and bool(headers.get("x-replayed")),
        body_hash=hashlib.sha256(body if isinstance(body, bytes) else str(body).encode("utf-8")).hexdigest(),
    )


def check_channel(env: Envelope, allowed: list[str] | tuple[str, ...]) -> str:
    """The channel, if it is known and this source may use it."""
    if env.channel is None:
        raise Rejected("not_found", "the routing key must be <channel>.submitted",
                       {"routing_key": [f"expected one of: {', '.join(f'{c}.submitted' for c in CHANNELS)}"]})
    if env.channel not in CHANNELS:
        raise Rejected("not_found", f"unknown channel {env.channel[:40]!r}",
                       {"channel": [f"one of {', '.join(CHANNELS)}"]})
    if env.channel not in allowed:
        raise Rejected("forbidden", f"{env.user} may not submit on channel {env.channel!r}")
    return env.channel


def check_message_id(env: Envelope) -> str:
    if env.message_id is None:
        raise Rejected("invalid", "every message needs a unique message_id", {"message_id": ["is required"]})
    if len(env.message_id) > MESSAGE_ID_MAX:
        raise Rejected("invalid", "the message_id is too long",
                       {"message_id": [f"must be at most {MESSAGE_ID_MAX} characters"]})
    return env.message_id


def decode(body: bytes, env: Envelope) -> dict:
    """The body as a JSON object, or Rejected naming what is wrong with it."""
    # py-amqp hands over a body declared utf-8 already decoded: the limit is on its bytes
    size = len(body) if isinstance(body, bytes) else len(str(body).encode("utf-8", "surrogatepass"))
    if size > MAX_SUBMISSION_BYTES:
        raise Rejected("too_large", f"the body is {size} bytes; the limit is {MAX_SUBMISSION_BYTES}")
    content_type = (env.content_type or "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise Rejected("unsupported_media_type", "send the body as content_type application/json (UTF-8)",
                       {"content_type": ["must be application/json"]})
    if env.content_encoding and env.content_encoding.lower().replace("-", "") not in ("utf8",):
        raise Rejected("unsupported_media_type", "the body must be UTF-8",
                       {"content_encoding": ["must be utf-8 or absent"]})
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
    except UnicodeDecodeError as exc:
        raise Rejected("invalid", "the body is not valid UTF-8", {"body": [f"invalid UTF-8 at byte {exc.start}"]}) from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply for the parser
        raise Rejected("invalid", "the body is not valid JSON", {"body": [str(exc)]}) from None
    if not isinstance(payload, dict):
        raise Rejected("invalid", "the body must be a JSON object", {"body": ["expected an object"]})
    problems = unsafe_text(payload)
    if problems:  # e.g. an unknown field named with a NUL: its name is recorded, PostgreSQL refuses it
        raise Rejected("invalid", "the body contains text that cannot be stored", problems)
    return payload


def result_routing_key(user: str | None, channel: str | None, status: str) -> str:
    """`<user>.<channel>.<status>`; words are kept to letters, digits, _ and - so a system's
    binding (`hotline-12345.#`) cannot be confused by a crafted user or channel."""
    return f"{_word(user) or 'anonymous'}.{_word(channel) or 'unknown'}.{status}"


def result_body(reference: str | None, case_no: str | None, status: str, error: dict | None, **extra) -> dict:
    return {"reference": reference, "case_no": case_no, "status": status, "error": error, **extra}


def _word(value: str | None) -> str:
    return _ROUTING_WORD.sub("_", value or "")[:64]


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
