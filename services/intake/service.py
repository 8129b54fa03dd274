"""Intake: every channel through one door (HTTP through the gateway, and the AMQP ingress)."""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy.exc import IntegrityError

from services.common import topology
from services.common.dependencies import DatabaseProvider
from services.common.messaging import DeadLetter, consume_raw, handle
from services.intake import handlers
from services.intake.merge import warm_up
from services.intake.models import Base


class MergeRules(DependencyProvider):
    """Loads jieba's dictionary and the merge rules at startup (about a second of CPU),
    not while the first submission waits."""

    def setup(self):
        warm_up()


class IntakeService:
    name = "intake"
    db = DatabaseProvider(Base.metadata)
    merge_rules = MergeRules()

    def _transaction(self, handler, *args):
        """Run a use case in one transaction; once more if a concurrent duplicate won a unique key
        (the same reference at once, a case number), so the retry finds what the other stored."""
        for attempt in (1, 2):
            try:
                with self.db.transaction() as uow:
                    return handler(uow, *args)
            except IntegrityError:
                if attempt == 2:
                    raise

    @rpc
    def submit(self, channel, payload, source_user=None):
        return self._transaction(handlers.submit, channel, payload, source_user)

    @consume_raw(topology.ingress_queue(), dead_queue=topology.INGRESS_DEAD)
    def on_ingress(self, body, properties):
        reason = self._transaction(handlers.ingest, body, properties)
        if reason:
            raise DeadLetter(reason)

    @rpc
    def unmerge(self, case_no, channel, reference, reason, actor=None):
        return self._transaction(handlers.unmerge, case_no, channel, reference, reason, actor)

    @rpc
    def get_case(self, case_no):
        with self.db.reading() as session:
            return handlers.case_view(session, case_no)

    @rpc
    def lookup(self, case_no, phone):
        with self.db.reading() as session:
            return handlers.lookup(session, case_no, phone)

    @handle("directory_updated")
    def on_directory_updated(self, event):
        with self.db.handling(event) as uow:
            handlers.replace_places(uow.session, event.data, uow.now)

    @handle("case_resolved")
    def on_case_resolved(self, event):
        with self.db.handling(event) as uow:
            handlers.case_finished(uow, event.type, event.data)

    @handle("case_closed")
    def on_case_closed(self, event):
        with self.db.handling(event) as uow:
            handlers.case_finished(uow, event.type, event.data)

    @timer(interval=3600)
    def forget_old_ingress_messages(self):
        with self.db.transaction() as uow:
            handlers.forget_old_ingress_messages(uow)

    @rpc
    def health(self):
        with self.db.reading() as session:
            ready = handlers.places_loaded(session)
        stats = self.db.relay.stats() if self.db.relay else {}
        return {"service": self.name, "ok": ready, "places_loaded": ready, **stats}
