"""Notify: messages that reach the right people, once."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.notify import handlers
from services.notify.channels import channels_from_env
from services.notify.models import Base


class Channels(DependencyProvider):
    """The outside channels (SMS gateway, SMTP, push webhook) configured from the environment."""

    def setup(self):
        self.channels = channels_from_env()

    def get_dependency(self, worker_ctx):
        return self.channels


class NotifyService(HealthMixin):
    name = "notify"
    db = DatabaseProvider(Base.metadata)
    channels = Channels()

    def _plan_and_send(self, event, **people):
        with self.db.handling(event) as uow:
            if people:
                handlers.remember(uow.session, event.correlation_id, **people)
            due = handlers.plan_deliveries(uow, event)
        for delivery_id in due:
            handlers.send(self.db, self.channels, delivery_id)

    @handle("case_received")
    def on_case_received(self, event):
        self._plan_and_send(event, complainant=event.data["source"].get("complainant"),
                            township=event.data.get("township"))

    @handle("case_assigned")
    def on_case_assigned(self, event):
        self._plan_and_send(event, assignees=event.data["assignees"])

    @timer(interval=5)
    def send_due(self):
        """Held (quiet hours) and retried deliveries, and any a crash left half-sent."""
        with self.db.reading() as session:
            due = handlers.due_deliveries(session, self.db.clock.now())
        for delivery_id in due:
            handlers.send(self.db, self.channels, delivery_id)
