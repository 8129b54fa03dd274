"""Broker users with least privilege, derived from the topology: deploy/rabbitmq/definitions.json.

Each service connects as `lanling-<service>` and may
- configure (declare, delete) only its own queues and exchanges (`<service>.…`), its nameko
  RPC queue `rpc-<service>` and reply queues, and nameko's shared `nameko-rpc` exchange;
- write (publish, bind its queues) to its own exchanges and queues, the retry exchanges and
  `nameko-rpc`, where topic permissions limit the routing keys to the RPC methods it may call
  and to replies;
- read (consume, bind from) its own queues and the exchanges it consumes from.
The source systems of the AMQP ingress (`source-<channel>`) publish `<channel>.submitted` to
`intake.ingress` and read their own queues `ingress.<user>.*` bound to their results and the
feedback of their channel. The admin (`lanling`) runs migrations, `lanling declare` and
`lanling dlq`. Passwords are not in the file: deploy/rabbitmq/set-passwords.sh sets them at
broker start from the environment (.env).

`python -m services.common.broker_users > deploy/rabbitmq/definitions.json` regenerates it;
a test keeps the committed file equal to the generated one.
"""
from __future__ import annotations

import json
import re

from services.common import config, topology
from services.contracts.catalogue import CATALOGUE

VHOST = "lanling"
ADMIN = "lanling"
RPC_EXCHANGE = "nameko-rpc"  # nameko's RPC exchange
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# whom a service calls over RPC (only the gateway does; each service's healthcheck calls its own `health`)
RPC_CALLS = {"gateway": ("intake", "routing", "mediation", "psych", "notify")}
# the source systems of the AMQP ingress: one broker user per channel that arrives over AMQP
SOURCE_CHANNELS = ("hotline", "petition", "opinion", "app", "grid")
DEFAULT_RETRY_DELAYS_MS = (200, 1000, 5000, 30000, 120000, 600000)


def service_user(service: str) -> str:
    return f"lanling-{service}"


def source_user(channel: str) -> str:
    return f"source-{channel}"


def _alternatives(names) -> str:
    return "^(" + "|".join(sorted(re.escape(n) if not n.startswith("~") else n[1:] for n in names)) + ")$"


def consumed_exchanges(service: str) -> list[str]:
    exchanges = {topology.event_exchange(spec.producer).name for spec in CATALOGUE if service in spec.consumers}
    if service == "intake":
        exchanges.add(topology.INGRESS.name)
    return sorted(exchanges)


def service_permissions(service: str) -> dict:
    own = f"~{re.escape(service)}\\..+"
    rpc = [f"rpc-{service}", f"~rpc\\.reply-{re.escape(service)}-{UUID}", f"~rpc\\.reply-standalone_rpc_proxy-{UUID}"]
    return {
        "configure": _alternatives([own, RPC_EXCHANGE, *rpc]),
        "write": _alternatives([own, RPC_EXCHANGE, *rpc, "~lanling\\.retry\\.[0-9]+"]),
        "read": _alternatives([own, RPC_EXCHANGE, *rpc, topology.REQUEUE.name, *consumed_exchanges(service)]),
    }


def service_topic_permissions(service: str) -> dict:
    """On `nameko-rpc`: publish calls to the services it may call and replies; bind only its own RPC queue."""
    callees = "|".join(sorted({service, *RPC_CALLS.get(service, ())}))
    return {"exchange": RPC_EXCHANGE,
            "write": f"^(({callees})\\.[a-z_]+|{UUID})$",
            "read": f"^({re.escape(service)}\\.\\*|{UUID})$"}


def source_permissions(user: str, channels: tuple[str, ...]) -> tuple[dict, list[dict]]:
    from services.intake.admin import broker_permissions

    words = "|".join(channels)
    topics = [
        {"exchange": topology.INGRESS.name, "write": f"^({words})\\.submitted$", "read": "^$"},
        {"exchange": topology.INGRESS_RESULTS.name, "write": "^$", "read": f"^{re.escape(user)}\\..*$"},
        {"exchange": topology.EGRESS.name, "write": "^$", "read": f"^({words})\\..*$"},
    ]
    return broker_permissions(user), topics


def _arguments(queue) -> dict:
    return dict(queue.queue_arguments or {})


def definitions(vhost: str = VHOST, retry_delays_ms=DEFAULT_RETRY_DELAYS_MS, suffix: str = "") -> dict:
    """RabbitMQ definitions: the vhost, the users and their permissions, and the whole topology.
    (`suffix` is appended to every user name: tests import the definitions beside others.)"""
    users = [{"name": ADMIN + suffix, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
              "tags": ["administrator"], "limits": {}}]
    permissions = [{"user": ADMIN + suffix, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}]
    topic_permissions = []
    for service in config.SERVICES:
        user = service_user(service) + suffix
        users.append({"name": user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                      "tags": [], "limits": {}})
        permissions.append({"user": user, "vhost": vhost, **service_permissions(service)})
        topic_permissions.append({"user": user, "vhost": vhost, **service_topic_permissions(service)})
    for channel in SOURCE_CHANNELS:
        user = source_user(channel) + suffix
        allowed, topics = source_permissions(user, (channel,))
        users.append({"name": user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                      "tags": [], "limits": {}})
        permissions.append({"user": user, "vhost": vhost, **allowed})
        topic_permissions += [{"user": user, "vhost": vhost, **topic} for topic in topics]
    exchanges = [{"name": e.name, "vhost": vhost, "type": e.type, "durable": True, "auto_delete": False,
                  "internal": False, "arguments": {}} for e in topology.all_exchanges(list(retry_delays_ms))]
    exchanges.append({"name": RPC_EXCHANGE, "vhost": vhost, "type": "topic", "durable": True, "auto_delete": False,
                      "internal": False, "arguments": {}})  # as nameko declares it
    queues, bindings = [], []
    for queue in topology.all_queues(list(retry_delays_ms)):
        queues.append({"name": queue.name, "vhost": vhost, "durable": True, "auto_delete": False,
                       "arguments": _arguments(queue)})
        links = [(b.exchange.name, b.routing_key or "") for b in queue.bindings]
        if queue.exchange is not None and queue.exchange.name:
            links.append((queue.exchange.name, queue.routing_key or ""))
        bindings += [{"source": source, "vhost": vhost, "destination": queue.name, "destination_type": "queue",
                      "routing_key": key, "arguments": {}} for source, key in links]
    return {
        "rabbit_version": "3.10.8",
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "parameters": [],
        "policies": [],
        "exchanges": sorted(exchanges, key=lambda e: e["name"]),
        "queues": sorted(queues, key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"], b["routing_key"])),
    }


def render(vhost: str = VHOST) -> str:
    return json.dumps(definitions(vhost), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
