"""Routing: classify each case and send it to the right level, mechanism and people."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.routing import handlers
from services.routing.models import Base


class RoutingService(HealthMixin):
    name = "routing"
    db = DatabaseProvider(Base.metadata)

    @handle("case_received")
    def on_case_received(self, event):
        with self.db.handling(event) as uow:
            handlers.route_new_case(uow, event.data)

    @rpc
    def townships(self):
        with self.db.reading() as session:
            directory = handlers.current_directory(session)
            return [{"code": t.code, "name": t.name, "kind": t.kind, "aliases": list(t.aliases)}
                    for t in directory.townships()]
