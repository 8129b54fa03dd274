"""Database access for one service: engine, unit of work, outbox and inbox.

Rules this module enforces (DESIGN §4):
- the entrypoint commits before it returns: `with self.db.transaction() as uow:` commits
  when the block ends, before nameko acks the message or sends the RPC reply;
- outgoing events are rows in the same transaction (`uow.emit`), published by the relay,
  which is woken right after the commit;
- a handled event is recorded in the inbox in the same transaction as its effects
  (`self.db.handling(event)`), so a redelivered event changes nothing.
"""
from __future__ import annotations

import json
import logging
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from services.common import config, privacy
from services.contracts.envelope import Event, new_event

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the platform stores aware UTC instants")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Encrypted(TypeDecorator):
    """Personal data encrypted at rest with the platform's data keys."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return privacy.encrypt(value)

    def process_result_value(self, value, dialect):
        return privacy.decrypt(value)


class EncryptedJSON(TypeDecorator):
    """A JSON document holding personal data, encrypted as a whole."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else privacy.encrypt(json.dumps(value, ensure_ascii=False, default=str))

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(privacy.decrypt(value))


def make_base() -> type[DeclarativeBase]:
    """A declarative base whose metadata already holds the outbox and inbox tables."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING)

    messaging_tables(Base.metadata)
    return Base


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    pending = text("published_at IS NULL")
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("message_id", String(64), nullable=False, unique=True),
        Column("exchange", String(200), nullable=False),
        Column("routing_key", String(200), nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("correlation_id", String(200)),
        Column("headers", JSON),
        Column("mandatory", Boolean, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", String(500)),
        Index("ix_outbox_pending", "id", postgresql_where=pending, sqlite_where=pending),
        Index("ix_outbox_published_at", "published_at"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(120), primary_key=True),
        Column("message_id", String(64), primary_key=True),
        Column("handled_at", UTCDateTime, nullable=False, index=True),
    )
    return outbox, inbox


def make_engine(url: str, *, pool_size: int = 10):
    """One engine per service process. `pool_size` should cover its concurrent workers plus the
    relay and timers (DatabaseProvider passes max_workers + 4): a worker that finds the pool
    empty waits up to 30 s for a connection, which looks like a stalled service."""
    url = config.normalise_db_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=pool_size)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)


def serialise(session: Session, key: str) -> None:
    """Make the other transactions that serialise on `key` wait until this one ends.

    For a check-then-insert that two consumers may run at once (an event about a case and the
    case itself): PostgreSQL takes a transaction-scoped advisory lock on the key; SQLite has a
    single writer, so a write that changes nothing takes its write lock for the transaction.
    Either way a query after this call sees what the other transaction committed.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    elif dialect == "sqlite":
        session.execute(text("UPDATE outbox SET id = id WHERE 0"))


class AlreadyHandled(Exception):
    """The event was handled before (it is in the inbox); the redelivery is acked and ignored."""


class UnitOfWork:
    """One transaction: a session plus the messages to publish once it commits."""

    def __init__(self, session: Session, outbox: Table, producer: str, now: datetime):
        self.session = session
        self._outbox = outbox
        self._producer = producer
        self.now = now
        self.emitted: list[Event] = []

    def emit(self, event_type: str, data: dict, *, correlation_id: str | None) -> Event:
        """Record a domain event; it is published after the commit, or never."""
        ev, body = new_event(event_type, data, correlation_id=correlation_id, occurred_at=self.now)
        self._add(ev.event_id, f"{ev.producer}.events", event_type, body, correlation_id, headers=None, mandatory=True)
        self.emitted.append(ev)
        return ev

    def publish(self, exchange: str, routing_key: str, payload: dict, *, correlation_id: str | None = None,
                headers: dict | None = None, message_id: str | None = None) -> None:
        """Record a plain JSON message for an outside system (no queue of ours need be bound)."""
        body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        self._add(message_id or str(uuid.uuid4()), exchange, routing_key, body, correlation_id, headers, mandatory=False)

    def _add(self, message_id, exchange, routing_key, body, correlation_id, headers, mandatory):
        self.session.execute(
            insert(self._outbox).values(
                message_id=message_id, exchange=exchange, routing_key=routing_key, body=body,
                correlation_id=correlation_id, headers=headers, mandatory=mandatory, created_at=self.now,
            )
        )
        self.has_messages = True

    has_messages = False


class Database:
    """The engine and transactions of one service; no nameko here (see common/dependencies.py)."""

    def __init__(self, url: str, metadata: MetaData, producer: str, clock, on_commit=None, *, pool_size: int = 10):
        self.engine = make_engine(url, pool_size=pool_size)
        self.metadata = metadata
        self.producer = producer
        self.clock = clock
        self.outbox = metadata.tables.get("outbox")
        self.inbox = metadata.tables.get("inbox")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._on_commit = on_commit
        self.relay = None  # set by the nameko provider when this process relays the outbox

    def create_all(self):
        """For tests and throwaway databases; deployments run migrations."""
        self.metadata.create_all(self.engine)

    @contextmanager
    def transaction(self):
        session = self._sessions()
        uow = UnitOfWork(session, self.outbox, self.producer, self.clock.now())
        try:
            yield uow
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        if uow.has_messages and self._on_commit:
            self._on_commit()

    @contextmanager
    def handling(self, event: Event, consumer: str | None = None):
        """A transaction that first records the event in the inbox; AlreadyHandled if it is there."""
        with self.transaction() as uow:
            try:
                # flushed first, so a concurrent duplicate waits on the key instead of racing
                uow.session.execute(
                    insert(self.inbox).values(
                        consumer=consumer or f"{self.producer}.{event.type}",
                        message_id=event.event_id,
                        handled_at=uow.now,
                    )
                )
            except IntegrityError as exc:
                raise AlreadyHandled(event.event_id) from exc
            yield uow

    @contextmanager
    def reading(self):
        session = self._sessions()
        try:
            yield session
        finally:
            session.expunge_all()   # what was read stays readable after the session ends (rollback expires it)
            session.rollback()
            session.close()

    def dispose(self):
        self.engine.dispose()
