"""Mediation's tables: the workflow state of each case, its append-only timeline, and the records
of the closed loop (parties, sessions, agreements, attachments, timer firings, supervision,
accountability, evaluations and rating links). Personal data is encrypted at rest."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Encrypted, EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class CaseRecord(Base):
    """The current state of a case (the lifecycle's CaseState), with the columns worklists filter on."""

    __tablename__ = "cases"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    level: Mapped[str | None] = mapped_column(String(16), index=True)
    mechanism: Mapped[str | None] = mapped_column(String(16))
    township: Mapped[str | None] = mapped_column(String(32), index=True)
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    dispute_type: Mapped[str | None] = mapped_column(String(16))
    lead_holder: Mapped[str | None] = mapped_column(String(64), index=True)
    next_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[dict] = mapped_column(JSON)
    context: Mapped[dict] = mapped_column(EncryptedJSON)  # people by id (staff refs, complainant), routing facts
    # when the timer next has something to do for this case (None: nothing scheduled); the scan's index
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True, nullable=True)
    overdue_grade: Mapped[str | None] = mapped_column(String(20), index=True, nullable=True)


class CaseHolder(Base):
    """Who holds a case now (多对一: several), for worklists: directory ids of mediators or unit codes."""

    __tablename__ = "case_holders"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class TimelineEntry(Base):
    """Append-only: every state change (who, what, when, why) and every event heard about the case."""

    __tablename__ = "timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (Index("ix_timeline_event_at", "event", "at"),)


class Party(Base):
    """An applicant, respondent or third party; captured from intake, edited by staff."""

    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))  # applicant | respondent | third_party
    name: Mapped[str] = mapped_column(Encrypted)
    phone: Mapped[str | None] = mapped_column(Encrypted, nullable=True)
    id_number: Mapped[str | None] = mapped_column(Encrypted, nullable=True)
    address: Mapped[str | None] = mapped_column(Encrypted, nullable=True)
    source: Mapped[str | None] = mapped_column(String(80), nullable=True)  # intake reference, or staff:<id>
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MediationSession(Base):
    """A mediation session: face to face, back to back (背对背) or online. Attendees and notes encrypted."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    attendees: Mapped[list] = mapped_column(EncryptedJSON)
    notes: Mapped[str] = mapped_column(Encrypted)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementRecord(Base):
    """The 调解协议书 of one resolution round (a redo gives a new one)."""

    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    round: Mapped[int] = mapped_column(Integer)
    facts: Mapped[str] = mapped_column(Encrypted)
    terms: Mapped[list] = mapped_column(EncryptedJSON)
    place: Mapped[str | None] = mapped_column(String(200), nullable=True)
    mediators: Mapped[list] = mapped_column(JSON)  # directory ids
    judicial_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    agreed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attachment(Base):
    """A file attached to a case; the bytes live in the attachment storage (local disk by default)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # photo | letter | agreement | other
    filename: Mapped[str] = mapped_column(Encrypted)
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimerFiring(Base):
    """One fired timer action; the UNIQUE key, written in the same transaction as its event, makes it once-only."""

    __tablename__ = "timer_firings"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    step: Mapped[str] = mapped_column(String(30))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_by: Mapped[str] = mapped_column(String(80))  # host:pid, to see which replica fired it


class Supervision(Base):
    """督办: opened by an overdue grade or a major case, with a supervisor."""

    __tablename__ = "supervisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(20))  # overdue | major
    deadline_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    supervisor: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # StaffRef without contacts
    supervised: Mapped[list] = mapped_column(JSON)  # ids of the units / mediators under supervision
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Accountability(Base):
    """问责 against a unit or a mediator."""

    __tablename__ = "accountabilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    against_kind: Mapped[str] = mapped_column(String(16))  # mediator | unit
    against_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    grade: Mapped[str] = mapped_column(String(20))
    deadline_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Evaluation(Base):
    """The citizen's rating of one resolution round."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    round: Mapped[int] = mapped_column(Integer)
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Encrypted, nullable=True)
    via: Mapped[str] = mapped_column(String(20))  # link | api
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RatingLink(Base):
    """The short token of a rating link (/r/<token>) for one resolution round."""

    __tablename__ = "rating_links"

    token: Mapped[str] = mapped_column(String(16), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    round: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EarlyEvent(Base):
    """An event about a case that arrived before the case itself (queues are not ordered with
    each other): it waits here, in its wire form, and is applied right after case_received."""

    __tablename__ = "early_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    producer: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSON)  # the contract's wire form: personal data stays sealed
