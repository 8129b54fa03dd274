"""The outbox relay: publishes committed outbox rows, then marks them published.

A row is marked only after the broker confirmed it, so a crash in between means
the message is published again on restart (consumers deduplicate by event id).
It is woken right after each commit that added rows, and also polls, so rows
written by another process (the CLI, a crashed replica) still go out.

On PostgreSQL several replicas share the outbox: each claims its batch with
`FOR UPDATE SKIP LOCKED`. SQLite has one writer process, so rows are read, published
and then marked in a second short transaction, never holding a write lock during I/O.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta, timezone

from sqlalchemy import delete, func, select, update

from services.common.broker import ConfirmedPublisher, Outgoing, PublishError

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, engine, table, publisher: ConfirmedPublisher, clock, *, batch_size: int = 200,
                 poll_seconds: float = 1.0, retention: timedelta = timedelta(days=2)):
        self.engine = engine
        self.table = table
        self.publisher = publisher
        self.clock = clock
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = retention
        self._wake = threading.Event()
        self._stopping = False
        self._last_purge = 0.0
        self.claim_with_lock = engine.dialect.name == "postgresql"

    def wake(self):
        self._wake.set()

    def stop(self):
        self._stopping = True
        self._wake.set()

    def run(self):
        backoff = 0.5
        while not self._stopping:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stopping:
                break
            try:
                self.drain()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - the relay must outlive broker and DB outages
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                self._wake.set()

    def drain(self) -> int:
        total = 0
        while True:
            sent = self.relay_batch()
            total += sent
            if sent < self.batch_size:
                break
        if time.monotonic() - self._last_purge > 600:
            self.purge()
        return total

    def _pending(self):
        t = self.table
        query = select(t).where(t.c.published_at.is_(None)).order_by(t.c.id).limit(self.batch_size)
        return query.with_for_update(skip_locked=True) if self.claim_with_lock else query

    def relay_batch(self) -> int:
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(self._pending()).all()
            if not rows:
                conn.rollback()
                return 0
            failed = {}
            try:
                self.publisher.publish([self._outgoing(row) for row in rows])
            except PublishError as exc:
                if not exc.failed:
                    conn.rollback()
                    raise
                failed = exc.failed
            ok_ids = [row.id for row in rows if row.message_id not in failed]
            if not self.claim_with_lock:
                conn.rollback()  # end the read; mark in a short write transaction below
            if ok_ids:
                conn.execute(update(t).where(t.c.id.in_(ok_ids)).values(published_at=self.clock.now()))
            for message_id, reason in failed.items():
                conn.execute(
                    update(t).where(t.c.message_id == message_id)
                    .values(attempts=t.c.attempts + 1, last_error=reason[:500])
                )
            conn.commit()
        if failed:
            # A return means a queue is missing (deleted by hand?): declare the topology again.
            log.error("outbox: %d messages were not accepted: %s", len(failed), next(iter(failed.values())))
            self.publisher.declare_topology()
            raise PublishError("some messages were returned", failed)
        return len(rows)

    @staticmethod
    def _outgoing(row) -> Outgoing:
        # The AMQP timestamp is when the event was recorded, so the broker can tell the age of
        # the oldest message waiting in each queue (head_message_timestamp, the operations view).
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
        return Outgoing(
            exchange=row.exchange, routing_key=row.routing_key, body=row.body, message_id=row.message_id,
            correlation_id=row.correlation_id, headers=row.headers, mandatory=row.mandatory,
            properties={"timestamp": int(created.timestamp())},
        )

    def purge(self):
        t = self.table
        cutoff = self.clock.now() - self.retention
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.published_at < cutoff))
        self._last_purge = time.monotonic()

    def stats(self) -> dict:
        t = self.table
        with self.engine.connect() as conn:
            pending, oldest = conn.execute(
                select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
            ).one()
        age = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        return {"outbox_pending": pending, "outbox_oldest_age_s": round(age, 3)}
