"""The broker topology, derived from the event catalogue, with explicit names.

- `<producer>.events`   topic exchange per producer; routing key = event type
- `<consumer>.<event>`  one durable queue per (consumer, event), bound to the producer's
                        exchange and to `lanling.requeue` under its own name
- `lanling.retry.<ms>`  fanout exchange + queue per retry delay; expired messages dead-letter
                        to `lanling.requeue`, which routes them back to their queue by name
- `<service>.dead`      the dead letters of a service, with the reason in `x-reason`, reached
                        through a fanout exchange of the same name (not the default exchange,
                        which would let a service write into any queue)
- intake's ingress for other county systems (DESIGN §3)

Every process declares all of it at startup (declaring is idempotent), so no event
can be published before its consumers' queues exist. With per-service broker users
(BROKER_DECLARE=own, docker-compose), a service may only configure its own part: the
admin declares everything first (`lanling declare`, and deploy/rabbitmq/definitions.json
at broker boot) and each service declares its own queues and exchanges and checks the
rest passively (services/common/broker_users.py holds the permissions). Consumer queues carry no
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


def _bound(exchange: Exchange) -> Exchange:
    """The exchange of a queue's binding, which the queue's declaration must not declare: it is
    declared by its owner (or `declare` below) and a consumer's broker user may not configure it."""
    return Exchange(exchange.name, exchange.type, durable=exchange.durable, no_declare=True)


def consumer_queue(spec: EventSpec, consumer: str) -> Queue:
    name = queue_name(consumer, spec.name)
    return Queue(
        name,
        bindings=[binding(_bound(event_exchange(spec.producer)), routing_key=spec.name),
                  binding(_bound(REQUEUE), routing_key=name)],
        durable=True,
    )


def ingress_queue() -> Queue:
    return Queue(
        INGRESS_QUEUE_NAME,
        bindings=[binding(_bound(INGRESS), routing_key="*.submitted"),
                  binding(_bound(REQUEUE), routing_key=INGRESS_QUEUE_NAME)],
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


def dead_exchange(dead_queue_name: str) -> Exchange:
    """Dead letters are published here (any routing key) and land in the queue of the same name."""
    return Exchange(dead_queue_name, "fanout", durable=True)


def _dead(name: str) -> Queue:
    return Queue(name, bindings=[binding(_bound(dead_exchange(name)))], durable=True)


def dead_queue(service: str) -> Queue:
    return _dead(f"{service}.dead")


def dead_queue_names() -> list[str]:
    return [dead_queue(service).name for service in config.SERVICES] + [INGRESS_DEAD]


def all_queues(retry_delays_ms=None) -> list[Queue]:
    queues = [consumer_queue(spec, consumer) for spec in CATALOGUE for consumer in spec.consumers]
    queues.append(ingress_queue())
    queues.append(_dead(INGRESS_DEAD))
    queues += [dead_queue(service) for service in config.SERVICES]
    delays = config.retry_delays_ms() if retry_delays_ms is None else retry_delays_ms
    queues += [retry_queue(ms) for ms in delays]
    return queues


def all_exchanges(retry_delays_ms=None) -> list[Exchange]:
    producers = sorted({spec.producer for spec in CATALOGUE})
    delays = config.retry_delays_ms() if retry_delays_ms is None else retry_delays_ms
    return ([event_exchange(p) for p in producers] + [REQUEUE, INGRESS, INGRESS_RESULTS, EGRESS]
            + [dead_exchange(name) for name in dead_queue_names()] + [retry_exchange(ms) for ms in delays])


def owner(name: str) -> str | None:
    """The service that owns (configures) a queue or exchange of the topology; None: the admin's."""
    first = name.split(".", 1)[0]
    return first if first in config.SERVICES and "." in name else None


def declare(channel, retry_delays_ms=None, service: str | None = None) -> None:
    """Declare every exchange, queue and binding (a kombu/py-amqp channel).

    With `service`, declare only what that service owns and check passively that the rest
    exists (a service's broker user may not configure another's part): a missing part fails
    loudly here instead of losing messages later."""
    for exchange in all_exchanges(retry_delays_ms):
        if service is None or owner(exchange.name) == service:
            exchange.declare(channel=channel)
        else:
            exchange.declare(channel=channel, passive=True)
    for queue in all_queues(retry_delays_ms):
        if service is None or owner(queue.name) == service:
            queue.declare(channel=channel)
        else:
            queue.queue_declare(channel=channel, passive=True)
