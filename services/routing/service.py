"""Routing: classify each case and send it to the right level, mechanism and people."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.routing import handlers, views
from services.routing.models import Base


class RoutingService(HealthMixin):
    name = "routing"
    db = DatabaseProvider(Base.metadata)

    # --- events ----------------------------------------------------------------------------

    @handle("case_received")
    def on_case_received(self, event):
        with self.db.handling(event) as uow:
            handlers.route_new_case(uow, event.data)

    @handle("assignment_returned")
    def on_assignment_returned(self, event):
        with self.db.handling(event) as uow:
            handlers.reroute_returned(uow, event.data)

    @handle("escalation_requested")
    def on_escalation_requested(self, event):
        with self.db.handling(event) as uow:
            handlers.escalate_case(uow, event.data)

    @handle("case_resolved")
    def on_case_resolved(self, event):
        with self.db.handling(event) as uow:
            handlers.case_ended(uow, event.data, "resolved")

    @handle("case_closed")
    def on_case_closed(self, event):
        with self.db.handling(event) as uow:
            handlers.case_ended(uow, event.data, "closed")

    # --- staff and parties (the gateway authenticates; actor = {id, role, kind, township}) --

    @rpc
    def choose_mediators(self, case_no, mediator_ids, actor):
        with self.db.transaction() as uow:
            return handlers.choose_mediators(uow, case_no, mediator_ids, actor)

    @rpc
    def edit_directory(self, actor, kind, action, key=None, data=None, reason=None):
        with self.db.transaction() as uow:
            return handlers.edit_directory(uow, actor, kind, action, key, data, reason)

    # --- queries ---------------------------------------------------------------------------

    @rpc
    def townships(self):
        with self.db.reading() as session:
            return views.townships_view(handlers.current_directory(session))

    @rpc
    def villages(self, township=None):
        with self.db.reading() as session:
            return views.villages_view(handlers.current_directory(session), township)

    @rpc
    def grids(self, township=None, village=None):
        with self.db.reading() as session:
            return views.grids_view(handlers.current_directory(session), township, village)

    @rpc
    def centres(self):
        with self.db.reading() as session:
            return views.centres_view(handlers.current_directory(session))

    @rpc
    def units(self):
        with self.db.reading() as session:
            return views.units_view(handlers.current_directory(session))

    @rpc
    def mediators(self, **filters):
        with self.db.reading() as session:
            return views.roster_view(handlers.current_directory(session), handlers.mediator_load(session),
                                        **filters)

    @rpc
    def mediator(self, mediator_id):
        with self.db.reading() as session:
            return handlers.mediator_detail(session, mediator_id)

    @rpc
    def staff(self, role=None, township=None):
        with self.db.reading() as session:
            return views.staff_view(handlers.current_directory(session), role=role, township=township)

    @rpc
    def directory_changes(self, kind=None, key=None, limit=100):
        with self.db.reading() as session:
            return handlers.directory_changes(session, kind=kind, key=key, limit=limit)

    @rpc
    def classify(self, item):
        with self.db.reading() as session:
            return handlers.explain_item(session, item)

    @rpc
    def case_routing(self, case_no):
        with self.db.reading() as session:
            return handlers.case_routing(session, case_no)
