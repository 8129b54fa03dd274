"""Notify's tables: people it must reach, deliveries (one per event, recipient and channel), the inbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Encrypted, EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class CasePeople(Base):
    """Who a case's messages reach: its complainants (from intake) and assignees (from mediation)."""

    __tablename__ = "case_people"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    complainants: Mapped[list] = mapped_column(EncryptedJSON, default=list)
    assignees: Mapped[list] = mapped_column(EncryptedJSON, default=list)
    township: Mapped[str | None] = mapped_column(String(32))


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


class InboxMessage(Base):
    """The in-app inbox (GET /api/v1/inbox), written in the same transaction as its delivery."""

    __tablename__ = "inbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    owner_id: Mapped[str] = mapped_column(String(100), index=True)
    case_no: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OptOut(Base):
    __tablename__ = "opt_outs"

    recipient_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # or "*"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
