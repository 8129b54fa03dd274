"""Intake's tables: cases, their sources (with what each is owed), case numbers, the places cache,
the duplicate index (merge keys and profiles of open cases), source systems of the AMQP ingress
and the ingress messages already handled."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
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
    outcome: Mapped[str | None] = mapped_column(String(32))  # resolved | resolved_on_site | referred … (mediation's)
    reply: Mapped[str | None] = mapped_column(Text)  # the summary sent to every source as its feedback


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
    # The source's own canonical case: a wrongly merged source becomes a case of its own from it.
    canonical: Mapped[dict | None] = mapped_column(EncryptedJSON)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    feedback: Mapped[list | None] = mapped_column(JSON)  # [{event, at, message_id}] sent on intake.egress
    history: Mapped[list | None] = mapped_column(JSON)  # merges undone: [{from_case, at, actor, reason}]


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


class MergeKey(Base):
    """The duplicate index: blocking keys of open cases (merge.merge_keys), one row per case and key.

    A submission looks up the cases sharing its keys, most recent first and a bounded number
    per key, so the check never scans cases. `opened_at` is the case's latest report: the
    merge window runs from it. Rows are deleted when the case leaves the open statuses.
    """

    __tablename__ = "merge_keys"
    __table_args__ = (Index("ix_merge_keys_key_opened_at", "key", "opened_at", "case_no"),)

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MergeProfileRow(Base):
    """What merging compares, per source of an open case (merge.MergeProfile plus its text features)."""

    __tablename__ = "merge_profiles"

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    profile: Mapped[dict] = mapped_column(JSON)  # MergeProfile.to_row() without the address
    address: Mapped[str | None] = mapped_column(Encrypted)
    features: Mapped[dict | None] = mapped_column(JSON)
    rules_digest: Mapped[str | None] = mapped_column(String(16))


class SourceSystem(Base):
    """An outside system allowed to publish on the AMQP ingress: its broker user and channels."""

    __tablename__ = "source_systems"

    broker_user: Mapped[str] = mapped_column(String(100), primary_key=True)
    channels: Mapped[list] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IngressMessage(Base):
    """An AMQP ingress message handled once: a redelivery gets the same outcome and changes nothing."""

    __tablename__ = "ingress_messages"

    source_user: Mapped[str] = mapped_column(String(100), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[dict] = mapped_column(JSON)  # the result body published, plus its status
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
