"""Source systems of the AMQP ingress, managed from the command line (`lanling sources …`).

Each outside system publishes with its own broker user; intake accepts a message only
from a registered user, on the channels registered for it. The broker user itself is
created in RabbitMQ (`broker_commands` prints the least-privilege commands).
"""
from __future__ import annotations

import re

from services.common import config
from services.common.clock import SystemClock
from services.common.db import Database
from services.intake import handlers
from services.intake.models import Base


def database() -> Database:
    return Database(config.db_url("intake"), Base.metadata, "intake", SystemClock())


def add_source_system(broker_user: str, channels: list[str], description: str | None = None,
                      db: Database | None = None) -> dict:
    """Register (or update) a broker user and the channels it may submit on."""
    db = db or database()
    with db.transaction() as uow:
        system = handlers.put_source_system(uow.session, broker_user, channels, uow.now, description)
        return {"broker_user": system.broker_user, "channels": list(system.channels)}


def disable_source_system(broker_user: str, db: Database | None = None) -> bool:
    db = db or database()
    with db.transaction() as uow:
        return handlers.disable_source_system(uow.session, broker_user, uow.now)


def list_source_systems(db: Database | None = None) -> list[dict]:
    db = db or database()
    with db.reading() as session:
        return handlers.source_systems(session)


def broker_permissions(broker_user: str) -> dict:
    """Least privilege for a source system's broker user (RabbitMQ configure/write/read patterns):
    publish to intake.ingress; declare, bind and read its own queues `ingress.<user>.*`, bound
    to the results and the feedback exchanges."""
    own = f"ingress\\.{re.escape(broker_user)}\\..*"
    return {
        "configure": f"^{own}",
        "write": f"^(intake\\.ingress|{own})$",
        "read": f"^(intake\\.ingress\\.results|intake\\.egress|{own})$",
    }


def broker_commands(broker_user: str, vhost: str = "/") -> list[str]:
    """The rabbitmqctl commands that create the system's broker user with those permissions."""
    allowed = broker_permissions(broker_user)
    return [
        f"rabbitmqctl add_user {broker_user} '<a strong password>'",
        f"rabbitmqctl set_permissions -p {vhost} {broker_user} "
        f"'{allowed['configure']}' '{allowed['write']}' '{allowed['read']}'",
    ]
