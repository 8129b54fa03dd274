"""Mediation's use cases over a real SQLite database and a manual clock; no broker."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from services.common.clock import ManualClock
from services.common.db import Database
from services.contracts.envelope import Event, load_event
from services.mediation import handlers
from services.mediation.deadlines import SHANGHAI
from services.mediation.models import Base

TOWNSHIP = "371324-005"
START = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)   # Monday 09:00 in Lanling


class Desk:
    """Drives mediation the way its entrypoints do: one transaction per event or action."""

    def __init__(self, db: Database, clock: ManualClock):
        self.db, self.clock = db, clock

    def event(self, type_: str, data: dict, producer: str = "intake") -> None:
        event = Event(type_, data, data.get("case_no"), self.clock.now(), producer, 1, str(uuid.uuid4()))
        with self.db.handling(event) as uow:   # as the service's entrypoints do
            if type_ == "case_received":
                handlers.open_case(uow, data)
            else:
                handlers.about_case(uow, event)

    def act(self, case_no: str, action: str, actor: dict, **payload) -> dict:
        with self.db.transaction() as uow:
            return handlers.act(uow, case_no, action, actor, payload)

    def tick(self) -> int:
        total = 0
        while True:
            with self.db.transaction() as uow:
                taken = handlers.fire_due(uow, 50)
            total += taken
            if taken < 50:
                return total

    def view(self, case_no: str, actor: dict | None = None, private: bool = False) -> dict:
        with self.db.reading() as session:
            return handlers.case_view(session, case_no, actor, private)

    def events(self, type_: str | None = None) -> list[Event]:
        outbox = self.db.outbox
        with self.db.reading() as session:
            bodies = session.execute(select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
        events = [load_event(body) for body in bodies]
        return [e for e in events if type_ is None or e.type == type_]

    def received(self, case_no: str, channel: str = "hotline", **changes) -> None:
        data = {
            "case_no": case_no, "accepted_at": self.clock.now(), "content": "邻居占了我家宅基地",
            "township": TOWNSHIP, "title": "宅基地纠纷",
            "source": {"channel": channel, "reference": f"ref-{case_no}", "received_at": self.clock.now(),
                       "complainant": {"name": "王秀英", "phone": "13812345678", "role": "complainant"}},
            "parties": [{"name": "李大山", "role": "respondent", "phone": "13900001111"}],
        }
        data.update(changes)
        self.event("case_received", data)

    def routed(self, case_no: str, attempt: int = 1, mediators=("M-005-1",), level="township",
               mechanism="chain", unit=None, supervisors=True, **changes) -> None:
        data = {
            "case_no": case_no, "attempt": attempt, "level": level, "mechanism": mechanism, "township": TOWNSHIP,
            "unit": unit, "co_units": [], "dispute_type": "邻里纠纷", "reasons": ["test"],
            "mediators": [{"id": m, "name": f"调解员{m[-1]}", "role": "mediator", "level": level,
                           "phone": "13800000005"} for m in mediators],
        }
        if supervisors:
            data["supervisors"] = [
                {"id": "TH-005", "name": "镇长", "role": "township_head", "township": TOWNSHIP, "phone": "13700000005"},
                {"id": "CS-1", "name": "督导", "role": "county_supervisor", "email": "cs1@example.org"}]
        data.update(changes)
        self.event("case_routed", data, producer="routing")


MEDIATOR = {"role": "mediator", "id": "M-005-1"}
HEAD = {"role": "township_head", "id": "TH-005", "township": TOWNSHIP}
SUPERVISOR = {"role": "county_supervisor", "id": "CS-1"}


@pytest.fixture
def desk(tmp_path):
    clock = ManualClock(START)
    db = Database(f"sqlite:///{tmp_path / 'mediation.db'}", Base.metadata, "mediation", clock)
    db.create_all()
    yield Desk(db, clock)
    db.dispose()


def later(desk: Desk, **delta) -> None:
    desk.clock.advance(timedelta(**delta))


def data_of(event: Event) -> dict:
    return json.loads(json.dumps(event.data, default=str))
