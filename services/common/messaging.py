"""nameko entrypoints for consuming messages, with retry and dead-lettering.

`@handle("case_received")` consumes one event of the catalogue from the queue
`<service>.case_received`. The handler gets a validated `Event`. When it raises:
- the message is republished to `lanling.retry.<delay>` (a TTL queue that routes it
  back to the same queue afterwards) with `x-retry-count` incremented, then acked;
- after the last delay it goes to `<service>.dead` with `x-reason`, then acked;
- an event that can never be handled (undecodable, unknown type, invalid data) goes to
  the dead-letter queue at once.
nameko's own `@event_handler` acks a failed message and drops it, or with
`requeue_on_error` loops on a poison message forever (DESIGN §4.5); this replaces it.

Messages are consumed as raw bytes (`RawQueueConsumer`), because kombu acks and
drops a message it cannot decode before any handler sees it (DESIGN §4.7).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import partial

import amqp.exceptions
import kombu.exceptions
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import SharedExtension
from nameko.messaging import Consumer, QueueConsumer
from nameko.rpc import RpcConsumer

from services.common import config, topology
from services.common.broker import ConfirmedPublisher, Outgoing, kept_properties
from services.common.db import AlreadyHandled
from services.contracts.catalogue import spec as event_spec
from services.contracts.envelope import InvalidEvent, load_event

log = logging.getLogger(__name__)


# What settling a message or replying on a connection that died can raise: nameko catches amqp's
# ConnectionError only, so a socket error (the broker closed the connection of a consumer frozen
# past its heartbeat, a reset network, a broker restart) escaped from the worker and killed the
# whole service container. Found by the fault suite (tests/faults).
DEAD_CONNECTION = (OSError, amqp.exceptions.ConnectionError, amqp.exceptions.RecoverableConnectionError)


def _settle_or_let_the_broker_redeliver(settle):
    def settle_message(self, message):
        try:
            settle(self, message)
        except DEAD_CONNECTION as exc:
            # unacknowledged messages of a dead connection go back to their queue; the redelivery is
            # deduplicated by the consumer's inbox (or, for RPC, answered again)
            log.warning("could not settle a message on a dead connection (%r); the broker will deliver it again",
                        exc)

    settle_message.__wrapped__ = settle
    return settle_message


def _answer_or_let_the_caller_retry(handle_result):
    def handle_rpc_result(self, message, result, exc_info):
        try:
            return handle_result(self, message, result, exc_info)
        except DEAD_CONNECTION + (kombu.exceptions.OperationalError,) as exc:
            # the broker went away while the worker ran: the reply cannot be sent. The caller's
            # RPC times out and it asks again (gateway: 503, and submissions are idempotent);
            # re-running the request here could repeat a staff action, so it is dropped
            log.warning("could not send an RPC reply (%r); the caller will time out and retry", exc)
            self.queue_consumer.ack_message(message)
            return result, exc_info

    handle_rpc_result.__wrapped__ = handle_result
    return handle_rpc_result


def tolerate_dead_connections() -> None:
    """Make every nameko consumer of this process (events, RPC, replies) survive a connection that
    died under a running worker, instead of letting the error kill the whole service container:
    settling the message on the dead connection, or sending the RPC reply while the broker is
    down. The consumer's own loop reconnects. Idempotent."""
    for name in ("ack_message", "requeue_message"):
        current = getattr(QueueConsumer, name)
        if not hasattr(current, "__wrapped__"):
            setattr(QueueConsumer, name, _settle_or_let_the_broker_redeliver(current))
    if not hasattr(RpcConsumer.handle_result, "__wrapped__"):
        RpcConsumer.handle_result = _answer_or_let_the_caller_retry(RpcConsumer.handle_result)


tolerate_dead_connections()


class DeadLetter(Exception):
    """Raised by a raw-message handler: this message can never be handled; park it at once
    in the dead-letter queue with this reason (no retries)."""


class RawQueueConsumer(QueueConsumer):
    """nameko's queue consumer, handing providers the undecoded message."""

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue], on_message=partial(self._on_raw_message, provider))
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _on_raw_message(self, provider, message):
        self.handle_message(provider, message.body, message)


class Broker(SharedExtension):
    """Declares the topology at startup and republishes failed messages with confirms."""

    def setup(self):
        conf = self.container.config
        self.retry_delays = list(conf.get("RETRY_DELAYS_MS") or config.retry_delays_ms())
        self.publisher = ConfirmedPublisher(conf["AMQP_URI"])
        # BROKER_DECLARE=own: the service's broker user may configure only its own part
        own = (conf.get("BROKER_DECLARE") or config.get("BROKER_DECLARE") or "all") == "own"
        self.publisher.declare_topology(self.retry_delays, self.container.service_name if own else None)

    def stop(self):
        self.publisher.close()

    def kill(self):
        self.publisher.close()

    def retry_or_dead_letter(self, message, queue_name: str, reason: str, dead_queue: str) -> None:
        headers = dict(message.headers or {})
        attempt = int(headers.get("x-retry-count", 0))
        if attempt < len(self.retry_delays):
            delay = self.retry_delays[attempt]
            headers.update({"x-retry-count": attempt + 1, "x-last-error": reason[:1000]})
            self._republish(message, f"lanling.retry.{delay}", queue_name, _with_origin(message, headers))
            log.warning("retry %d/%d in %d ms for %s: %s", attempt + 1, len(self.retry_delays), delay, queue_name, reason)
        else:
            self.dead_letter(message, queue_name, reason, dead_queue)

    def dead_letter(self, message, queue_name: str, reason: str, dead_queue: str) -> None:
        headers = _with_origin(message, dict(message.headers or {}))
        headers.update({
            "x-reason": reason[:1000],
            "x-original-queue": queue_name,
            "x-died-at": datetime.now(timezone.utc).isoformat(),
        })
        self._republish(message, topology.dead_exchange(dead_queue).name, dead_queue, headers)
        log.error("dead-lettered a message from %s to %s: %s", queue_name, dead_queue, reason)

    def _republish(self, message, exchange: str, routing_key: str, headers: dict) -> None:
        props = message.properties
        self.publisher.publish([
            Outgoing(
                exchange=exchange,
                routing_key=routing_key,
                body=message.body,
                message_id=props.get("message_id") or "",
                correlation_id=props.get("correlation_id"),
                headers=headers,
                mandatory=True,
                content_type=props.get("content_type") or "application/octet-stream",
                properties=kept_properties(props),
            )
        ])


def _with_origin(message, headers: dict) -> dict:
    """Keep where a message first came from across retries and dead-lettering.

    A retried or replayed message comes back through `lanling.requeue` under its queue's
    name, and the broker only lets a connection claim its own user, so the original
    exchange, routing key and validated `user_id` travel as headers; the first values win.
    """
    headers.setdefault("x-original-exchange", message.delivery_info.get("exchange", ""))
    headers.setdefault("x-original-routing-key", message.delivery_info.get("routing_key", ""))
    user_id = message.properties.get("user_id")
    if user_id:
        headers.setdefault("x-original-user-id", user_id)
    return headers


class _RetryingConsumer(Consumer):
    queue_consumer = RawQueueConsumer()
    broker = Broker()

    def dead_queue(self) -> str:
        return topology.dead_queue(self.container.service_name).name

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is not None and isinstance(exc_info[1], DeadLetter):
            try:
                self.broker.dead_letter(message, self.queue.name, str(exc_info[1]), self.dead_queue())
            except Exception:  # noqa: BLE001 - could not park it: give it back to the queue
                log.exception("could not dead-letter a message; requeueing it")
                self.queue_consumer.requeue_message(message)
                return
        elif exc_info is not None and not isinstance(exc_info[1], AlreadyHandled):
            reason = f"{type(exc_info[1]).__name__}: {exc_info[1]}"
            try:
                self.broker.retry_or_dead_letter(message, self.queue.name, reason, self.dead_queue())
            except Exception:  # noqa: BLE001 - could not park it: give it back to the queue
                log.exception("could not republish a failed message; requeueing it")
                self.queue_consumer.requeue_message(message)
                return
        self.queue_consumer.ack_message(message)

    def _spawn(self, message, args, context_data):
        try:
            self.container.spawn_worker(
                self, args, {}, context_data=context_data, handle_result=partial(self.handle_result, message)
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)


class EventHandler(_RetryingConsumer):
    def __init__(self, event_type: str, **kwargs):
        self.event_type = event_type
        kwargs.setdefault("expected_exceptions", (AlreadyHandled,))
        super().__init__(queue=None, **kwargs)

    def setup(self):
        spec = event_spec(self.event_type)
        service = self.container.service_name
        if service not in spec.consumers:
            raise RuntimeError(f"{service} handles {self.event_type} but the catalogue does not list it as a consumer")
        self.queue = topology.consumer_queue(spec, service)
        super().setup()

    def handle_message(self, body, message):
        try:
            event = load_event(body)
        except InvalidEvent as exc:
            self.broker.dead_letter(message, self.queue.name, str(exc), self.dead_queue())
            self.queue_consumer.ack_message(message)
            return
        self._spawn(message, (event,), {"correlation_id": event.correlation_id})


class RawMessageConsumer(_RetryingConsumer):
    """Consume undecoded messages from a queue of the topology (the AMQP ingress).

    The handler gets `(body: bytes, properties: dict)` (the AMQP properties plus `headers`,
    `exchange` and `routing_key`) and decides itself what is invalid: it raises DeadLetter
    to park a message at once; any other exception is a transient fault and is retried.
    """

    def __init__(self, queue, dead_queue: str, **kwargs):
        self._dead_queue = dead_queue
        kwargs.setdefault("expected_exceptions", (DeadLetter,))
        super().__init__(queue=queue, **kwargs)

    def dead_queue(self) -> str:
        return self._dead_queue

    def handle_message(self, body, message):
        properties = dict(message.properties)
        properties["headers"] = dict(message.headers or {})
        properties["routing_key"] = message.delivery_info.get("routing_key", "")
        properties["exchange"] = message.delivery_info.get("exchange", "")
        self._spawn(message, (body, properties), {})


handle = EventHandler.decorator
consume_raw = RawMessageConsumer.decorator
