"""Psych: the pool of counsellors and matching them to cases."""
from __future__ import annotations

import logging

from nameko.rpc import rpc
from nameko.timer import Timer

from services.common import config as settings
from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.psych import handlers, roster
from services.psych.models import Base

log = logging.getLogger(__name__)


class ConfiguredTimer(Timer):
    """A timer whose interval comes from the container config or the environment, read at setup."""

    def __init__(self, setting: str, default: float, **kwargs):
        self.setting = setting
        super().__init__(interval=default, **kwargs)

    def setup(self):
        configured = self.container.config.get(self.setting)
        self.interval = float(configured or settings.get_float(self.setting, self.interval))


class PsychService(HealthMixin):
    name = "psych"
    db = DatabaseProvider(Base.metadata)

    # -- triggers ---------------------------------------------------------------------
    @handle("psych_requested")
    def on_psych_requested(self, event):
        with self.db.handling(event) as uow:
            handlers.request_help(uow, event.data)

    @handle("case_urgent")
    def on_case_urgent(self, event):
        with self.db.handling(event) as uow:
            handlers.urgent_case(uow, event.data)

    @ConfiguredTimer.decorator("PSYCH_OFFER_SCAN_SECONDS", 10.0)
    def scan_expired_offers(self):
        """Unanswered offers past their time go to the next candidate; one short transaction per case."""
        with self.db.reading() as session:
            due = handlers.expired_cases(session, self.db.clock.now())
        for case_no in due:
            try:
                with self.db.transaction() as uow:
                    handlers.expire_case(uow, case_no)
            except Exception:  # noqa: BLE001 - one bad case must not hold up the others
                log.exception("offer scan: could not move case %s on; next scan retries", case_no)
        if due:
            log.info("offer scan: %d case(s) with expired offers", len(due))

    # -- the roster -------------------------------------------------------------------
    @rpc
    def list_counsellors(self, filters, limit=None, offset=None):
        with self.db.reading() as session:
            return roster.list_view(session, filters or {}, limit, offset, self.db.clock.now())

    @rpc
    def get_counsellor(self, counsellor_id, reveal_phone=False):
        with self.db.reading() as session:
            return roster.detail_view(session, counsellor_id, self.db.clock.now(), reveal_phone=reveal_phone)

    @rpc
    def create_counsellor(self, body, actor):
        with self.db.transaction() as uow:
            return handlers.create_counsellor(uow, body or {}, actor)

    @rpc
    def update_counsellor(self, counsellor_id, changes, actor):
        with self.db.transaction() as uow:
            return handlers.update_counsellor(uow, counsellor_id, changes or {}, actor)

    @rpc
    def set_counsellor_active(self, counsellor_id, active, reason, actor):
        with self.db.transaction() as uow:
            return handlers.set_active(uow, counsellor_id, active, reason, actor)

    @rpc
    def pool_stats(self, active_only=False):
        with self.db.reading() as session:
            return roster.statistics(session, self.db.clock.now(), active_only=active_only)

    @rpc
    def match(self, profile):
        with self.db.reading() as session:
            return handlers.match_preview(session, profile or {}, self.db.clock.now())

    # -- cases, offers, sessions --------------------------------------------------------
    @rpc
    def list_cases(self, filters, reader, limit=None, offset=None):
        with self.db.reading() as session:
            return handlers.list_cases(session, filters or {}, reader, limit, offset, self.db.clock.now())

    @rpc
    def get_case(self, case_no, reader):
        with self.db.reading() as session:
            return handlers.case_view(session, case_no, reader, self.db.clock.now())

    @rpc
    def record_consent(self, case_no, body, actor):
        with self.db.transaction() as uow:
            return handlers.record_consent(uow, case_no, body or {}, actor)

    @rpc
    def coordinator_offer(self, case_no, body, actor):
        with self.db.transaction() as uow:
            return handlers.coordinator_offer(uow, case_no, body or {}, actor)

    @rpc
    def list_offers(self, filters, reader, limit=None, offset=None):
        with self.db.reading() as session:
            return handlers.list_offers(session, filters or {}, reader, limit, offset)

    @rpc
    def answer_offer(self, offer_id, accepted, body, actor):
        with self.db.transaction() as uow:
            return handlers.answer_offer(uow, offer_id, accepted, body or {}, actor)

    @rpc
    def record_session(self, case_no, body, actor):
        with self.db.transaction() as uow:
            return handlers.record_session(uow, case_no, body or {}, actor)

    @rpc
    def list_sessions(self, case_no, reader):
        with self.db.reading() as session:
            return handlers.list_sessions(session, case_no, reader)

    @rpc
    def record_outcome(self, case_no, body, actor):
        with self.db.transaction() as uow:
            return handlers.record_outcome(uow, case_no, body or {}, actor)
