"""The broker topology, derived from the event catalogue, with explicit names.

- `<producer>.events`   topic exchange per producer; routing key = event type
- `<consumer>.<event>`  one durable queue per (consumer, event), bound to the producer's
                        exchange and to `lanling.requeue` under its own name
- `lanling.retry.<ms>`  fanout exchange + queue per retry delay; expired messages dead-letter
                        to `lanling.requeue`, which routes them back to their queue by name
- `<service>.dead`      the dead letters of a service, with the reason in `x-reason`
- intake's ingress for other county systems (DESIGN §3)

Every process declares all of it at startup (declaring is idempotent), so no event
can be published before its consumers' queues exist. Consumer queues carry no
arguments: limits and dead-lettering for them belong in broker policies
(deploy/rabbitmq/definitions.json), because nameko re-declares its queues plainly.
The retry queues are ours alone, so they carry their TTL as queue arguments.
"""
from __future__ import annotations

from kombu import Exchange, Queue, binding

from services.common import config
from services.contracts.catalogue import CATALOGUE, EventSpec

REQUEUE = Exchange("lanling.requeue", "direct", durable=True)
INGRESS = Exchange("intake.ingress", "topic", durable=True)
INGRESS_RESULTS = Exchange("intake.ingress.results", "topic", durable=True)
EGRESS = Exchange("intake.egress", "topic", durable=True)
INGRESS_QUEUE_NAME = "intake.ingress"
INGRESS_DEAD = "intake.ingress.dead"


def event_exchange(producer: str) -> Exchange:
    return Exchange(f"{producer}.events", "topic", durable=True)


def queue_name(consumer: str, event_type: str) -> str:
    return f"{consumer}.{event_type}"


def consumer_queue(spec: EventSpec, consumer: str) -> Queue:
    name = queue_name(consumer, spec.name)
    return Queue(
        name,
        bindings=[binding(event_exchange(spec.producer), routing_key=spec.name), binding(REQUEUE, routing_key=name)],
        durable=True,
    )


def ingress_queue() -> Queue:
    return Queue(
        INGRESS_QUEUE_NAME,
        bindings=[binding(INGRESS, routing_key="*.submitted"), binding(REQUEUE, routing_key=INGRESS_QUEUE_NAME)],
        durable=True,
    )


def retry_exchange(delay_ms: int) -> Exchange:
    return Exchange(f"lanling.retry.{delay_ms}", "fanout", durable=True)


def retry_queue(delay_ms: int) -> Queue:
    return Queue(
        f"lanling.retry.{delay_ms}",
        exchange=retry_exchange(delay_ms),
        durable=True,
        queue_arguments={"x-message-ttl": delay_ms, "x-dead-letter-exchange": REQUEUE.name},
    )


def dead_queue(service: str) -> Queue:
    return Queue(f"{service}.dead", durable=True)


def all_queues(retry_delays_ms=None) -> list[Queue]:
    queues = [consumer_queue(spec, consumer) for spec in CATALOGUE for consumer in spec.consumers]
    queues.append(ingress_queue())
    queues.append(Queue(INGRESS_DEAD, durable=True))
    queues += [dead_queue(service) for service in config.SERVICES]
    delays = config.retry_delays_ms() if retry_delays_ms is None else retry_delays_ms
    queues += [retry_queue(ms) for ms in delays]
    return queues


def all_exchanges() -> list[Exchange]:
    producers = sorted({spec.producer for spec in CATALOGUE})
    return [event_exchange(p) for p in producers] + [REQUEUE, INGRESS, INGRESS_RESULTS, EGRESS]


def declare(channel, retry_delays_ms=None) -> None:
    """Declare every exchange, queue and binding (a kombu/py-amqp channel)."""
    for exchange in all_exchanges():
        exchange.declare(channel=channel)
    for queue in all_queues(retry_delays_ms):
        queue.declare(channel=channel)
