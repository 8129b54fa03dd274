"""Mediation: the case lifecycle and the closed loop; the memory of the system."""
from __future__ import annotations

from nameko.rpc import rpc

from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.mediation import handlers
from services.mediation.models import Base


class MediationService(HealthMixin):
    name = "mediation"
    db = DatabaseProvider(Base.metadata)

    @handle("case_received")
    def on_case_received(self, event):
        with self.db.handling(event) as uow:
            handlers.open_case(uow, event.data)

    @handle("case_routed")
    def on_case_routed(self, event):
        with self.db.handling(event) as uow:
            handlers.on_routed(uow, event.data)

    @handle("notification_sent")
    def on_notification_sent(self, event):
        with self.db.handling(event) as uow:
            handlers.note(uow, event)

    @handle("notification_failed")
    def on_notification_failed(self, event):
        with self.db.handling(event) as uow:
            handlers.note(uow, event)

    @rpc
    def get_case(self, case_no):
        with self.db.reading() as session:
            return handlers.case_view(session, case_no)
