"""The operations view: per service, what waits, what died, what came back, how old it is.

Two sources: the RabbitMQ management API (each queue's depth, redeliveries and the
timestamp of its head message — the outbox relay stamps every event with the time it was
recorded) and each service's outbox (unpublished rows and the oldest one's age, from the
service's own `health` RPC). The gateway shows both in `GET /api/v1/health` and, in
Prometheus text format, in `GET /metrics`.

A queue belongs to the service that consumes it: `<service>.<event>`, `<service>.dead`,
`intake.ingress` and its dead letters, and nameko's `rpc-<service>`.
"""
from __future__ import annotations

import logging
import time
from urllib.parse import quote, unquote, urlsplit

import requests

from services.common import config

log = logging.getLogger(__name__)

QUEUE_COLUMNS = "name,messages,messages_ready,messages_unacknowledged,message_stats.redeliver," \
                "head_message_timestamp,consumers"


def management_url() -> str:
    return config.get("RABBIT_MANAGEMENT_URL")


def vhost_of(amqp_uri: str) -> str:
    path = urlsplit(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def owner(queue: str) -> str | None:
    """The service a queue belongs to, or None for queues that are nobody's (retry, replies)."""
    if queue.startswith("rpc-"):
        queue = queue[4:]
    service = queue.split(".", 1)[0]
    return service if service in config.SERVICES else None


def fetch_queues(amqp_uri: str, base_url: str | None = None, timeout: float = 3.0) -> list[dict]:
    """Every queue of the vhost with its figures (raises requests.RequestException when unreachable)."""
    url = f"{(base_url or management_url()).rstrip('/')}/api/queues/{quote(vhost_of(amqp_uri), safe='')}"
    response = requests.get(url, params={"columns": QUEUE_COLUMNS}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def queue_figures(queues: list[dict], now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    figures = []
    for q in queues:
        head = q.get("head_message_timestamp")
        figures.append({
            "queue": q["name"],
            "service": owner(q["name"]),
            "dead": q["name"].endswith(".dead"),
            "messages": int(q.get("messages") or 0),
            "unacknowledged": int(q.get("messages_unacknowledged") or 0),
            "redeliveries": int((q.get("message_stats") or {}).get("redeliver") or 0),
            "oldest_age_s": round(max(0.0, now - head), 3) if isinstance(head, (int, float)) else None,
        })
    return figures


def by_service(figures: list[dict], outboxes: dict[str, dict] | None = None) -> dict[str, dict]:
    """Per service: messages waiting in its queues, its dead letters, redeliveries, the age of
    the oldest unprocessed message (queued or not yet published from its outbox)."""
    outboxes = outboxes or {}
    summary = {}
    for service in config.SERVICES:
        mine = [f for f in figures if f["service"] == service]
        live = [f for f in mine if not f["dead"]]
        ages = [f["oldest_age_s"] for f in live if f["oldest_age_s"] is not None and f["messages"]]
        outbox = outboxes.get(service) or {}
        if outbox.get("outbox_pending"):
            ages.append(outbox.get("outbox_oldest_age_s") or 0.0)
        summary[service] = {
            "messages": sum(f["messages"] for f in live),
            "dead_letters": sum(f["messages"] for f in mine if f["dead"]),
            "redeliveries": sum(f["redeliveries"] for f in live),
            "oldest_unprocessed_age_s": max(ages) if ages else 0.0,
            "outbox_pending": outbox.get("outbox_pending"),
            "outbox_oldest_age_s": outbox.get("outbox_oldest_age_s"),
        }
    return summary


def prometheus_text(figures: list[dict] | None, services: dict[str, dict], up: dict[str, bool]) -> bytes:
    """The figures in Prometheus' text format (a fresh registry per scrape: nothing is global)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()

    def gauge(name, doc, labels):
        return Gauge(name, doc, labels, registry=registry)

    broker_up = gauge("lanling_broker_management_up", "1 when the RabbitMQ management API answered", [])
    broker_up.set(0 if figures is None else 1)
    service_up = gauge("lanling_service_up", "1 when the service answered its health RPC", ["service"])
    for service, ok in up.items():
        service_up.labels(service).set(1 if ok else 0)
    if figures is not None:
        q_messages = gauge("lanling_queue_messages", "Messages in the queue (ready and unacknowledged)",
                           ["service", "queue"])
        q_redeliver = gauge("lanling_queue_redeliveries", "Messages redelivered from the queue since it was "
                            "declared (the broker's message_stats.redeliver)", ["service", "queue"])
        q_age = gauge("lanling_queue_oldest_message_age_seconds", "Age of the message at the head of the queue",
                      ["service", "queue"])
        for f in figures:
            labels = (f["service"] or "", f["queue"])
            q_messages.labels(*labels).set(f["messages"])
            q_redeliver.labels(*labels).set(f["redeliveries"])
            q_age.labels(*labels).set(f["oldest_age_s"] or 0.0)
    per_service = {
        "lanling_service_queue_messages": ("Messages waiting in the service's queues", "messages"),
        "lanling_service_dead_letters": ("Messages in the service's dead-letter queues", "dead_letters"),
        "lanling_service_redeliveries": ("Redeliveries from the service's queues", "redeliveries"),
        "lanling_service_oldest_unprocessed_age_seconds": (
            "Age of the oldest message the service has not processed (queued, or unpublished in its outbox)",
            "oldest_unprocessed_age_s"),
        "lanling_outbox_pending": ("Outbox rows not yet published", "outbox_pending"),
        "lanling_outbox_oldest_age_seconds": ("Age of the oldest unpublished outbox row", "outbox_oldest_age_s"),
    }
    for name, (doc, key) in per_service.items():
        g = gauge(name, doc, ["service"])
        for service, values in services.items():
            if values.get(key) is not None:
                g.labels(service).set(values[key])
    return generate_latest(registry)
