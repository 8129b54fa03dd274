"""An event about a case that arrives while mediation is still committing the case itself.

Routing answers case_received within milliseconds, so mediation often handles case_routed while
its case_received transaction is still open. Found by the fault suite (tests/faults): the event
did not see the uncommitted case and parked itself as an EarlyEvent after open_case had already
looked for early events, so the case was never assigned. Two transactions on PostgreSQL, the
first held open at exactly that point.
"""
from __future__ import annotations

import uuid

import eventlet
from eventlet.event import Event as Signal
from psycogreen.eventlet import patch_psycopg
from sqlalchemy import func, select, text

from services.common.db import Database
from services.common.migrate import upgrade
from services.contracts.envelope import Event
from services.mediation import handlers
from services.mediation.models import Base, CaseRecord, EarlyEvent
from tests.harness import wait_until
from tests.unit.mediation.conftest import START, Desk


class HeldOpen(Desk):
    """Desk whose case_received transaction waits, after open_case, until it is released."""

    def __init__(self, db, clock):
        super().__init__(db, clock)
        self.opened, self.release = Signal(), Signal()

    def event(self, type_: str, data: dict, producer: str = "intake") -> None:
        if type_ != "case_received":
            return super().event(type_, data, producer)
        event = Event(type_, data, data["case_no"], self.clock.now(), producer, 1, str(uuid.uuid4()))
        with self.db.handling(event) as uow:
            handlers.open_case(uow, data)
            uow.session.flush()
            self.opened.send()
            self.release.wait()


def waiting_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar())


def test_case_routed_during_the_commit_of_its_case_is_not_left_waiting(postgres_databases):
    patch_psycopg()  # two transactions in one process: waiting on PostgreSQL must yield
    url = postgres_databases.urls["mediation"]
    upgrade("mediation", url)
    from services.common.clock import ManualClock

    db = Database(url, Base.metadata, "mediation", ManualClock(START))
    try:
        desk = HeldOpen(db, db.clock)
        receiving = eventlet.spawn(desk.received, "C-RACE-1")
        desk.opened.wait()
        routing = eventlet.spawn(desk.routed, "C-RACE-1")
        # the routed event either waits for the open transaction or (the bug) parks itself at once
        wait_until(lambda: routing.dead or waiting_on_a_lock(db), 10, interval=0.02,
                   what="case_routed parked or waiting for the case")
        desk.release.send()
        receiving.wait()
        routing.wait()
        with db.reading() as session:
            assert session.scalar(select(func.count()).select_from(EarlyEvent)) == 0
            assert session.get(CaseRecord, "C-RACE-1").status == "assigned"
    finally:
        db.dispose()
