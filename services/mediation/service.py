"""Mediation: the case lifecycle and the closed loop; the memory of the system."""
from __future__ import annotations

import base64
import hashlib
import logging

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import Timer

from services.common import config
from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.contracts.errors import REMOTE_ERRORS, Invalid
from services.mediation import handlers, storage
from services.mediation.models import Base

log = logging.getLogger(__name__)
DEFAULT_TIMER_SECONDS = 30.0


class DeadlineTimer(Timer):
    """nameko's timer with its interval from config (MEDIATION_TIMER_SECONDS), fired at start too."""

    def __init__(self, **kwargs):
        super().__init__(interval=DEFAULT_TIMER_SECONDS, eager=True, **kwargs)

    def setup(self):
        self.interval = float(self.container.config.get("MEDIATION_TIMER_SECONDS")
                              or config.get_float("MEDIATION_TIMER_SECONDS", DEFAULT_TIMER_SECONDS))

    def start(self):
        log.info("deadline timer running every %.1f s", self.interval)
        super().start()


class Attachments(DependencyProvider):
    """The attachment storage (local disk under var/ by default; see storage.py)."""

    def setup(self):
        self.storage = storage.storage_from_env()

    def get_dependency(self, worker_ctx):
        return self.storage


class MediationService(HealthMixin):
    name = "mediation"
    db = DatabaseProvider(Base.metadata)
    files = Attachments()
    config = Config()

    # -- events ---------------------------------------------------------------
    @handle("case_received")
    def on_case_received(self, event):
        with self.db.handling(event) as uow:
            handlers.open_case(uow, event.data)

    def _about_case(self, event):
        with self.db.handling(event) as uow:
            handlers.about_case(uow, event)

    @handle("case_routed")
    def on_case_routed(self, event):
        self._about_case(event)

    @handle("case_merged")
    def on_case_merged(self, event):
        self._about_case(event)

    @handle("case_unmerged")
    def on_case_unmerged(self, event):
        self._about_case(event)

    @handle("case_urgent")
    def on_case_urgent(self, event):
        self._about_case(event)

    @handle("counsellor_assigned")
    def on_counsellor_assigned(self, event):
        self._about_case(event)

    @handle("counsellor_offered")
    def on_counsellor_offered(self, event):
        self._about_case(event)

    @handle("psych_unmatched")
    def on_psych_unmatched(self, event):
        self._about_case(event)

    @handle("psych_session_recorded")
    def on_psych_session_recorded(self, event):
        self._about_case(event)

    @handle("notification_sent")
    def on_notification_sent(self, event):
        self._about_case(event)

    @handle("notification_failed")
    def on_notification_failed(self, event):
        self._about_case(event)

    # -- the timer ------------------------------------------------------------
    @DeadlineTimer.decorator
    def fire_timers(self):
        """Reminders, overdue grades, supervision, accountability, rating follow-up: each once."""
        batch = int(self.config.get("MEDIATION_TIMER_BATCH") or config.get_int("MEDIATION_TIMER_BATCH", 50))
        total = 0
        while True:
            with self.db.transaction() as uow:
                taken = handlers.fire_due(uow, batch)
            total += taken
            if taken < batch:
                break
        if total:
            log.info("timer: fired due actions on %d case(s)", total)

    # -- staff and citizens (through the gateway) -----------------------------
    @rpc(expected_exceptions=REMOTE_ERRORS)
    def get_case(self, case_no, actor=None, private=False):
        with self.db.reading() as session:
            return handlers.case_view(session, case_no, actor, private)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def act(self, case_no, action, actor, payload=None):
        with self.db.transaction() as uow:
            return handlers.act(uow, case_no, action, actor, payload or {})

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def edit_parties(self, case_no, actor, parties):
        with self.db.transaction() as uow:
            return handlers.edit_parties(uow, case_no, actor, parties)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def add_attachment(self, case_no, actor, kind, filename, content_type, data_b64):
        with self.db.reading() as session:   # who may, before what is sent: a stranger learns nothing
            handlers.check_attachment_scope(session, case_no, actor)
        try:
            data = base64.b64decode(data_b64, validate=True)
            storage.check(kind, content_type, data)
        except storage.AttachmentRefused as exc:
            raise Invalid(str(exc), {exc.field: [str(exc)]}) from None
        except ValueError:
            raise Invalid("the file is not valid base64", {"body": ["base64"]}) from None
        key = self.files.put(case_no, data)   # content-addressed: a retry stores nothing new
        with self.db.transaction() as uow:
            return handlers.add_attachment(uow, case_no, actor, kind, filename or "attachment", content_type,
                                           len(data), hashlib.sha256(data).hexdigest(), key)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def get_attachment(self, case_no, attachment_id, actor):
        with self.db.reading() as session:
            handlers.check_attachment_scope(session, case_no, actor)
            row = handlers.attachment(session, case_no, int(attachment_id))
            key, meta = row.storage_key, {"filename": row.filename, "content_type": row.content_type}
        return {**meta, "data_b64": base64.b64encode(self.files.get(key)).decode("ascii")}

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def evaluate(self, case_no, token, rating, comment=None, via="link"):
        with self.db.transaction() as uow:
            return handlers.evaluate(uow, case_no, token, rating, comment, via)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def rating_link(self, token):
        with self.db.reading() as session:
            return handlers.rating_link(session, token, self.db.clock.now())

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def worklist(self, actor, filters):
        with self.db.reading() as session:
            return handlers.worklist(session, actor, filters)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def agreement(self, case_no, public=True, places=None, round_no=None):
        with self.db.reading() as session:
            return handlers.agreement_html(session, case_no, public, places, round_no)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def scorecard(self, by, start, end, actor):
        with self.db.reading() as session:
            return handlers.scorecard(session, by, start, end, self.db.clock.now(), actor)

    @rpc(expected_exceptions=REMOTE_ERRORS)
    def hot_topics(self, days, top=10):
        with self.db.reading() as session:
            return handlers.hot_topics(session, int(days), self.db.clock.now(), int(top))
