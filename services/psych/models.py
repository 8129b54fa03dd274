"""Psych's tables: the counsellor pool, requests (with consent), offers, sessions, the audit trail."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Encrypted, EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class CounsellorRow(Base):
    __tablename__ = "counsellors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    record: Mapped[dict] = mapped_column(EncryptedJSON)  # match.Counsellor's record; holds the phone
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The roster version that last changed this row: replicas reload only rows newer than theirs.
    version: Mapped[int] = mapped_column(Integer, index=True, server_default="0")
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RosterVersion(Base):
    """One row: bumped in every transaction that changes the roster (a cheap check per use)."""

    __tablename__ = "roster_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class PsychRequest(Base):
    """One case's need for a counsellor: consent, the current round of offers, the outcome."""

    __tablename__ = "requests"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile: Mapped[dict] = mapped_column(EncryptedJSON)  # match.CaseProfile's fields; holds party hashes
    urgent: Mapped[bool] = mapped_column(Boolean)
    consent: Mapped[str] = mapped_column(String(16))
    emergency_reason: Mapped[str | None] = mapped_column(String(300))
    # await_consent | offered | assigned | unmatched | closed
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_offer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    candidates: Mapped[list] = mapped_column(JSON, default=list)  # the ranking with scores and reasons
    # A closed or unmatched case asked for again starts a new round (episode); offers belong to one.
    episode: Mapped[int] = mapped_column(Integer, server_default="1")
    triggers: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")  # psych_requested, case_urgent, …
    need: Mapped[str | None] = mapped_column(String(300))  # why help was asked (masked)
    consent_by: Mapped[str | None] = mapped_column(String(100))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counsellor_id: Mapped[str | None] = mapped_column(String(32), index=True)  # the assigned one
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unmatched_reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_due: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PartyLink(Base):
    """Which cases a party (keyed hash of a phone or ID number) appeared in: continuity."""

    __tablename__ = "party_links"

    party_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_status_expires_at", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    counsellor_id: Mapped[str] = mapped_column(String(32), index=True)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | accepted | declined | timed_out | withdrawn
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    basis: Mapped[str | None] = mapped_column(String(200))
    episode: Mapped[int] = mapped_column(Integer, server_default="1")
    urgent: Mapped[bool] = mapped_column(Boolean, server_default="0")
    answer_reason: Mapped[str | None] = mapped_column(String(300))  # why declined or withdrawn


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    episode: Mapped[int] = mapped_column(Integer)
    counsellor_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Encrypted)  # confidential: the writer and the coordinator only
    next_follow_up: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Append-only: who did what to a case's psych request, when and why (DESIGN §5)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
