"""Psych: the pool of counsellors and matching them to cases."""
from __future__ import annotations

from services.common.dependencies import DatabaseProvider, HealthMixin
from services.common.messaging import handle
from services.psych import handlers
from services.psych.models import Base


class PsychService(HealthMixin):
    name = "psych"
    db = DatabaseProvider(Base.metadata)

    @handle("psych_requested")
    def on_psych_requested(self, event):
        with self.db.handling(event) as uow:
            handlers.request_help(uow, event.data)
