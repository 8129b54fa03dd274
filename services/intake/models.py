"""Intake's tables: cases, their sources (with what each is owed), case numbers, the places cache."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Encrypted, EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class Case(Base):
    __tablename__ = "cases"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | resolved | closed
    channel: Mapped[str] = mapped_column(String(16))  # of the first source
    township: Mapped[str | None] = mapped_column(String(32), index=True)
    village: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canonical: Mapped[dict] = mapped_column(EncryptedJSON)  # the case as first accepted, personal data included


class Source(Base):
    """One report of the case from one channel: the idempotency key and what that source is owed."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("channel", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(ForeignKey("cases.case_no"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(64))
    source_user: Mapped[str | None] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    complainant_name: Mapped[str | None] = mapped_column(Encrypted)
    complainant_phone: Mapped[str | None] = mapped_column(Encrypted)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    obligations: Mapped[list] = mapped_column(JSON, default=list)
    answer: Mapped[dict] = mapped_column(JSON)  # the first answer, returned again to a resend
    merge: Mapped[dict | None] = mapped_column(JSON)  # score, matched fields and reasons when merged
    feedback_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseSequence(Base):
    """The per-day counter behind case numbers, incremented atomically."""

    __tablename__ = "case_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Place(Base):
    """Intake's read-only cache of routing's places (townships, villages, grids)."""

    __tablename__ = "places"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON)


class PlacesVersion(Base):
    __tablename__ = "places_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
