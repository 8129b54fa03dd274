"""Notify's tables: the people it must reach, places, the duty roster, deliveries and their
attempts (one delivery per event, recipient and channel), opt-outs and the in-app inbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Encrypted, EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class CasePeople(Base):
    """What notify remembers of a case: its complainants (intake) and assignees (mediation), and
    where it is, so later events that carry only the case number still reach the right people."""

    __tablename__ = "case_people"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    complainants: Mapped[list] = mapped_column(EncryptedJSON, default=list)
    assignees: Mapped[list] = mapped_column(EncryptedJSON, default=list)
    township: Mapped[str | None] = mapped_column(String(32))
    village: Mapped[str | None] = mapped_column(String(40), nullable=True)
    dispute_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Place(Base):
    """Township and village names by code, from routing's `directory_updated` snapshot (events carry codes)."""

    __tablename__ = "places"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # township | village
    name: Mapped[str] = mapped_column(String(60))


class DirectoryVersion(Base):
    """The version of the last directory snapshot applied: an older one arriving late is ignored."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DutyAssignment(Base):
    """The duty roster: who is on duty (值班), who supervises, who coordinates counselling.

    `township` is a township code, or NULL for the county. An entry with `starts_at`/`ends_at`
    is a shift; one without is standing duty. Shifts covering a moment take precedence over
    standing duty for the same role and township. `source` "default" rows are replaced when
    the defaults are seeded again; "manual" rows (the API) are never touched by seeding.
    """

    __tablename__ = "duty_roster"
    __table_args__ = (Index("ix_duty_roster_role_township", "role", "township"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(String(24))  # on_duty | supervisor | psych_coordinator
    township: Mapped[str | None] = mapped_column(String(32), nullable=True)
    staff_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(60), nullable=True)  # staff names are public roster data
    phone: Mapped[str | None] = mapped_column(Encrypted, nullable=True)
    email: Mapped[str | None] = mapped_column(Encrypted, nullable=True)
    app_user_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # default | manual
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Delivery(Base):
    """Exactly one row per (event, recipient, channel): `key` is also every send's idempotency key."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    case_no: Mapped[str | None] = mapped_column(String(32), index=True)
    audience: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[str] = mapped_column(String(100), index=True)
    recipient_display: Mapped[str] = mapped_column(String(100))  # masked
    channel: Mapped[str] = mapped_column(String(16))
    contact: Mapped[str] = mapped_column(Encrypted)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    legally_required: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | sending | sent | failed | skipped
    reason: Mapped[str | None] = mapped_column(String(40))  # quiet_hours | opted_out
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))


class DeliveryAttempt(Base):
    """One try of a delivery. An attempt without an outcome was cut off by a crash: its message
    may or may not have reached the receiver, which is why every try carries the same key."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)  # sent | transient_failure | ...
    detail: Mapped[str | None] = mapped_column(String(300), nullable=True)  # masked


class InboxMessage(Base):
    """The in-app inbox (GET /api/v1/inbox), written in the same transaction as its delivery."""

    __tablename__ = "inbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    owner_id: Mapped[str] = mapped_column(String(100), index=True)
    case_no: Mapped[str | None] = mapped_column(String(32))
    event_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OptOut(Base):
    """A person's choice not to hear from notify on a channel ("*": any). Legally required
    notices go anyway. `display` is the masked person, for listing; `created_by` who recorded it."""

    __tablename__ = "opt_outs"

    recipient_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # or "*"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    display: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
