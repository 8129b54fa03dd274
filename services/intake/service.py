"""Intake: every channel through one door."""
from __future__ import annotations

from nameko.rpc import rpc
from sqlalchemy.exc import IntegrityError

from services.common.dependencies import DatabaseProvider
from services.common.messaging import handle
from services.intake import handlers
from services.intake.models import Base


class IntakeService:
    name = "intake"
    db = DatabaseProvider(Base.metadata)

    @rpc
    def submit(self, channel, payload, source_user=None):
        for attempt in (1, 2):
            try:
                with self.db.transaction() as uow:
                    return handlers.submit(uow, channel, payload, source_user)
            except IntegrityError:
                if attempt == 2:  # the same reference arrived twice at once: the retry finds the first
                    raise

    @rpc
    def get_case(self, case_no):
        with self.db.reading() as session:
            return handlers.case_view(session, case_no)

    @handle("directory_updated")
    def on_directory_updated(self, event):
        with self.db.handling(event) as uow:
            handlers.replace_places(uow.session, event.data, uow.now)

    @rpc
    def health(self):
        with self.db.reading() as session:
            ready = handlers.places_loaded(session)
        stats = self.db.relay.stats() if self.db.relay else {}
        return {"service": self.name, "ok": ready, "places_loaded": ready, **stats}
