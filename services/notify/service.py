"""Notify: messages that reach the right people, once."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import Timer

from services.common import config
from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.notify import handlers, queries
from services.notify.channels import channels_from_env
from services.notify.models import Base


class Channels(DependencyProvider):
    """The outside channels (SMS gateway, SMTP, push webhook) configured from the environment."""

    def setup(self):
        self.channels = channels_from_env()

    def get_dependency(self, worker_ctx):
        return self.channels


class SweepTimer(Timer):
    """nameko's timer, its interval from NOTIFY_SWEEP_SECONDS (read at setup, not import)."""

    def setup(self):
        self.interval = config.get_float("NOTIFY_SWEEP_SECONDS", self.interval)


class NotifyService(HealthMixin):
    name = "notify"
    db = DatabaseProvider(Base.metadata)
    channels = Channels()

    def _plan_and_send(self, event):
        with self.db.handling(event) as uow:
            due = handlers.plan_deliveries(uow, event)
        for delivery_id in due:
            handlers.send(self.db, self.channels, delivery_id)

    # -- events: every one the catalogue lists notify as a consumer of ------------------------
    @handle("case_received")
    def on_case_received(self, event):
        self._plan_and_send(event)

    @handle("case_merged")
    def on_case_merged(self, event):
        self._plan_and_send(event)

    @handle("case_urgent")
    def on_case_urgent(self, event):
        self._plan_and_send(event)

    @handle("case_assigned")
    def on_case_assigned(self, event):
        self._plan_and_send(event)

    @handle("case_accepted")
    def on_case_accepted(self, event):
        self._plan_and_send(event)

    @handle("reminder_due")
    def on_reminder_due(self, event):
        self._plan_and_send(event)

    @handle("case_overdue")
    def on_case_overdue(self, event):
        self._plan_and_send(event)

    @handle("extension_requested")
    def on_extension_requested(self, event):
        self._plan_and_send(event)

    @handle("extension_decided")
    def on_extension_decided(self, event):
        self._plan_and_send(event)

    @handle("supervision_opened")
    def on_supervision_opened(self, event):
        self._plan_and_send(event)

    @handle("accountability_recorded")
    def on_accountability_recorded(self, event):
        self._plan_and_send(event)

    @handle("case_resolved")
    def on_case_resolved(self, event):
        self._plan_and_send(event)

    @handle("evaluation_requested")
    def on_evaluation_requested(self, event):
        self._plan_and_send(event)

    @handle("case_evaluated")
    def on_case_evaluated(self, event):
        self._plan_and_send(event)

    @handle("case_closed")
    def on_case_closed(self, event):
        self._plan_and_send(event)

    @handle("counsellor_offered")
    def on_counsellor_offered(self, event):
        self._plan_and_send(event)

    @handle("counsellor_assigned")
    def on_counsellor_assigned(self, event):
        self._plan_and_send(event)

    @handle("psych_unmatched")
    def on_psych_unmatched(self, event):
        self._plan_and_send(event)

    @handle("directory_updated")
    def on_directory_updated(self, event):
        with self.db.handling(event) as uow:
            handlers.apply_directory(uow.session, event.data, uow.now)

    @SweepTimer.decorator(interval=5)
    def send_due(self):
        """Held (quiet hours) and retried deliveries, and any a crash left half-sent."""
        with self.db.reading() as session:
            due = handlers.due_deliveries(session, self.db.clock.now())
        for delivery_id in due:
            handlers.send(self.db, self.channels, delivery_id)

    # -- RPC: the gateway's /api/v1/inbox, /notify/*, /cases/{case_no}/deliveries --------------
    @rpc
    def inbox(self, owners, page=1, per_page=20, unread_only=False):
        with self.db.reading() as session:
            return queries.inbox_page(session, owners, page=page, per_page=per_page, unread_only=unread_only)

    @rpc
    def mark_read(self, owners, ids=None):
        with self.db.transaction() as uow:
            return queries.mark_read(uow.session, owners, ids, uow.now)

    @rpc
    def case_deliveries(self, case_no):
        with self.db.reading() as session:
            return queries.case_deliveries(session, case_no)

    @rpc
    def deliveries(self, status="failed", limit=100):
        with self.db.reading() as session:
            return queries.deliveries_by_status(session, status, limit)

    @rpc
    def retry_delivery(self, key):
        with self.db.transaction() as uow:
            return queries.retry_delivery(uow.session, key, uow.now)

    @rpc
    def citizen_opt_out(self, case_no, phone, channels=None, opted_out=True):
        with self.db.transaction() as uow:
            return queries.citizen_opt_out(uow.session, case_no, phone, channels, opted_out, uow.now)

    @rpc
    def staff_opt_out(self, recipient_ids, display=None, channels=None, opted_out=True):
        with self.db.transaction() as uow:
            return queries.staff_opt_out(uow.session, recipient_ids, display, channels, opted_out, uow.now)

    @rpc
    def staff_opt_outs(self, recipient_ids):
        with self.db.reading() as session:
            return queries.staff_opt_outs(session, recipient_ids)

    @rpc
    def duty_roster(self, township=None, role=None, county=True):
        with self.db.reading() as session:
            return queries.list_duty(session, township=township, role=role, county=county, at=self.db.clock.now())

    @rpc
    def add_duty(self, entry, actor):
        with self.db.transaction() as uow:
            return queries.add_duty(uow.session, entry, actor, uow.now)

    @rpc
    def remove_duty(self, entry_id, township_scope=None):
        with self.db.transaction() as uow:
            return queries.remove_duty(uow.session, entry_id, township_scope)
