"""The deadline timer with two mediation processes on one PostgreSQL database: every action fires
exactly once, and a clock moved past every deadline (the service was down) is caught up.

Real processes (`python -m services.common.runner mediation`, as `lanling run mediation=2` starts them),
a real broker vhost, a FileOffsetClock both processes read: the test moves time, it never sleeps.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from kombu import Connection
from sqlalchemy import func, select

from services.common.broker import ConfirmedPublisher
from services.common.clock import FileOffsetClock
from services.common.db import Database
from services.common.migrate import upgrade
from services.mediation import handlers, timers
from services.mediation.models import Base, CaseRecord, TimerFiring
from services.mediation.store import load_state
from tests.harness import System, wait_until
from tests.unit.mediation.conftest import Desk

CASES = 30


@pytest.fixture
def two_replicas(postgres_databases, tmp_path):
    url = postgres_databases.urls["mediation"]
    upgrade("mediation", url)
    clock_file = tmp_path / "clock"
    clock_file.write_text("0")
    system = System(tmp_path, db_urls={"mediation": url},
                    env={"LANLING_CLOCK_FILE": str(clock_file), "MEDIATION_TIMER_SECONDS": "0.3",
                         "MEDIATION_TIMER_BATCH": "2"})
    publisher = ConfirmedPublisher(system.env["AMQP_URI"])
    publisher.declare_topology()
    publisher.close()
    db = Database(url, Base.metadata, "mediation", FileOffsetClock(clock_file))
    try:
        yield system, db, FileOffsetClock(clock_file)
    finally:
        system.stop()
        db.dispose()


def expected(db) -> Counter:
    """What must have fired by now, from the pure schedule of every stored case."""
    now = db.clock.now()
    counts = Counter()
    with db.reading() as session:
        for rec in session.scalars(select(CaseRecord)):
            for action in handlers.schedule_of(load_state(rec.state)):
                if action.fire_at <= now:
                    counts[action.event] += 1
    return counts


def test_two_replicas_fire_each_action_exactly_once_and_catch_up(two_replicas):
    system, db, clock = two_replicas
    desk = Desk(db, clock)
    for n in range(CASES):
        case_no = f"371324-20261130-{n:06d}"
        desk.received(case_no, channel=("hotline", "app", "petition")[n % 3])
        desk.routed(case_no, mediators=(f"M-005-{n % 4}",))
    clock.advance(timedelta(days=90))     # mediation was down past every deadline of these cases
    want = expected(db)
    for label in ("mediation.1", "mediation.2"):
        system.start("mediation", label=label)
    total = sum(want.values())
    assert total >= CASES * 10            # the whole ladder: reminders, grades, supervision, accountability

    def fired():
        with db.reading() as session:
            return session.scalar(select(func.count()).select_from(TimerFiring))

    wait_until(lambda: fired() >= total, 120, what=f"{total} timer firings")

    def published():
        with db.reading() as session:
            return session.scalar(select(func.count()).select_from(db.outbox)
                                  .where(db.outbox.c.published_at.is_(None))) == 0

    wait_until(published, 60, what="the outbox published")
    with db.reading() as session:
        keys = session.scalars(select(TimerFiring.key)).all()
        by_process = Counter(session.scalars(select(TimerFiring.fired_by)))
        bodies = session.scalars(select(db.outbox.c.routing_key)).all()
    assert len(keys) == len(set(keys)) == total
    emitted = Counter(key for key in bodies if key in timers.EVENTS.values())
    assert emitted == want                # each event once in the outbox ...
    with Connection(system.env["AMQP_URI"]) as conn:   # ... and once on the broker
        channel = conn.channel()
        for event, count in want.items():
            _name, messages, _consumers = channel.queue_declare(f"notify.{event}", passive=True)
            assert messages == count, event
    assert 1 <= len(by_process) <= 2
    print(f"firings per process: {dict(by_process)}")
