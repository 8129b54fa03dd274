"""nameko dependency providers: a service's database (with its outbox relay) and its clock."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from services.common.broker import ConfirmedPublisher
from services.common.clock import clock_from_env
from services.common.db import Database
from services.common.messaging import tolerate_dead_connections  # noqa: F401 - applied on import, for the gateway too
from services.common.outbox import OutboxRelay


class DatabaseProvider(DependencyProvider):
    """Injects the service's `Database`; runs the outbox relay while the service runs.

    The database URL is `config["DATABASES"][service_name]`; a test may pass a clock
    object as `config["CLOCK"]`.
    """

    def __init__(self, metadata):
        self.metadata = metadata

    def setup(self):
        conf = self.container.config
        service = self.container.service_name
        self.clock = conf.get("CLOCK") or clock_from_env()
        self.relay = None
        self.db = Database(conf["DATABASES"][service], self.metadata, producer=service, clock=self.clock,
                           on_commit=self._wake_relay, pool_size=int(conf.get("max_workers") or 10) + 4)
        if self.db.outbox is not None:
            publisher = ConfirmedPublisher(conf["AMQP_URI"])
            self.relay = OutboxRelay(self.db.engine, self.db.outbox, publisher, self.clock,
                                     poll_seconds=conf.get("OUTBOX_POLL_SECONDS", 1.0))
            self.db.relay = self.relay

    def _wake_relay(self):
        if self.relay is not None:
            self.relay.wake()

    def start(self):
        if self.relay is not None:
            self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")
            self.relay.wake()  # publish whatever a previous run left behind

    def stop(self):
        if self.relay is not None:
            self.relay.stop()
            self.relay.publisher.close()
        self.db.dispose()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.db


class HealthMixin:
    """Every service answers `health` over RPC; the gateway's /health asks each of them."""

    @rpc
    def health(self):
        stats = self.db.relay.stats() if getattr(self.db, "relay", None) else {}
        return {"service": self.name, "ok": True, **stats}
