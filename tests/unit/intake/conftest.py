"""Intake's use cases over a real (SQLite) database and a manual clock; no broker."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from services.common.clock import ManualClock
from services.common.db import Database
from services.intake import handlers
from services.intake.models import Base

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Lanling, a Monday

PLACES = {
    "townships": [
        {"code": "371324-003", "name": "兰陵镇", "kind": "镇", "aliases": []},
        {"code": "371324-004", "name": "大仲村镇", "kind": "镇", "aliases": ["大仲村"]},
        {"code": "371324-001", "name": "卞庄街道", "kind": "街道", "aliases": ["卞庄"]},
    ],
    "villages": [
        {"code": "371324-004-001", "name": "后楼村", "township": "371324-004"},
        {"code": "371324-004-002", "name": "前楼村", "township": "371324-004"},
        {"code": "371324-003-001", "name": "东关村", "township": "371324-003"},
    ],
    "grids": [{"code": "371324-004-001-01", "village": "371324-004-001", "township": "371324-004"}],
    "digest": "test",
}


class Intake:
    """The database plus helpers to run one use case in one transaction, as service.py does."""

    def __init__(self, db: Database, clock: ManualClock):
        self.db, self.clock = db, clock

    def run(self, handler, *args, **kwargs):
        with self.db.transaction() as uow:
            result = handler(uow, *args, **kwargs)
            self.last_events = list(uow.emitted)
        return result

    def submit(self, channel, payload, user="source-a"):
        return self.run(handlers.submit, channel, payload, user)

    def read(self, fn, *args):
        with self.db.reading() as session:
            return fn(session, *args)

    def count(self, model) -> int:
        with self.db.reading() as session:
            return session.scalar(select(func.count()).select_from(model))

    def outbox(self) -> list[dict]:
        with self.db.reading() as session:
            rows = session.execute(select(self.db.outbox).order_by(self.db.outbox.c.id)).all()
        return [{"exchange": r.exchange, "routing_key": r.routing_key, "body": json.loads(r.body),
                 "correlation_id": r.correlation_id, "message_id": r.message_id} for r in rows]

    def events(self, event_type=None) -> list[dict]:
        return [m["body"] for m in self.outbox()
                if m["exchange"] == "intake.events" and (event_type is None or m["routing_key"] == event_type)]

    def published(self, exchange) -> list[dict]:
        return [m for m in self.outbox() if m["exchange"] == exchange]


@pytest.fixture
def clock():
    return ManualClock(NOW)


@pytest.fixture
def intake(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("LANLING_HASH_KEY", "unit-test-key")
    db = Database(f"sqlite:///{tmp_path / 'intake.db'}", Base.metadata, "intake", clock)
    db.create_all()
    with db.transaction() as uow:
        handlers.replace_places(uow.session, {"version": 1, "places": PLACES}, uow.now)
    yield Intake(db, clock)
    db.dispose()


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).isoformat()
