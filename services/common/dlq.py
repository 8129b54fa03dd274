"""Dead letters: list them, and replay them to the queue they came from after a fix."""
from __future__ import annotations

from kombu import Connection

from services.common import config, topology
from services.common.broker import ConfirmedPublisher, Outgoing, kept_properties

RETRY_HEADERS = ("x-retry-count", "x-last-error", "x-reason", "x-died-at")


def dead_queues() -> list[str]:
    return topology.dead_queue_names()


def _drain(connection, queue: str):
    """Fetch every message of a queue without acking (they return to it when the channel closes)."""
    channel = connection.channel()
    try:
        while True:
            message = channel.basic_get(queue, no_ack=False)
            if message is None:
                break
            yield channel, message
    finally:
        channel.close()


def list_dead(queue: str | None = None, amqp_uri: str | None = None) -> list[dict]:
    items = []
    with Connection(amqp_uri or config.get("AMQP_URI")) as conn:
        for name in [queue] if queue else dead_queues():
            for _channel, message in _drain(conn.connection, name):
                headers = message.properties.get("application_headers") or {}
                items.append({
                    "queue": name,
                    "message_id": message.properties.get("message_id"),
                    "reason": headers.get("x-reason"),
                    "original_queue": headers.get("x-original-queue"),
                    "died_at": headers.get("x-died-at"),
                    "retries": headers.get("x-retry-count", 0),
                    "body": message.body[:500].decode("utf-8", "replace") if isinstance(message.body, bytes)
                    else str(message.body)[:500],
                })
    return items


def replay(queue: str | None = None, message_id: str | None = None, amqp_uri: str | None = None) -> int:
    """Send dead letters back to their original queue with a fresh retry budget."""
    uri = amqp_uri or config.get("AMQP_URI")
    publisher = ConfirmedPublisher(uri)
    replayed = 0
    try:
        with Connection(uri) as conn:
            for name in [queue] if queue else dead_queues():
                for channel, message in _drain(conn.connection, name):
                    props = message.properties
                    headers = dict(props.get("application_headers") or {})
                    if message_id and props.get("message_id") != message_id:
                        continue
                    target = headers.get("x-original-queue")
                    if not target:
                        continue
                    for key in RETRY_HEADERS:
                        headers.pop(key, None)
                    headers["x-replayed"] = True
                    publisher.publish([Outgoing(
                        exchange=topology.REQUEUE.name, routing_key=target, body=message.body,
                        message_id=props.get("message_id") or "", correlation_id=props.get("correlation_id"),
                        headers=headers, content_type=props.get("content_type") or "application/octet-stream",
                        properties=kept_properties(props),
                    )])
                    channel.basic_ack(message.delivery_tag)
                    replayed += 1
    finally:
        publisher.close()
    return replayed
