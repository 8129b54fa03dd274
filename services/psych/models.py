"""Psych's tables: the counsellor pool, requests (with consent), offers."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class CounsellorRow(Base):
    __tablename__ = "counsellors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, index=True)
    record: Mapped[dict] = mapped_column(EncryptedJSON)  # match.Counsellor's record; holds the phone
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PsychRequest(Base):
    __tablename__ = "requests"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile: Mapped[dict] = mapped_column(EncryptedJSON)
    urgent: Mapped[bool] = mapped_column(Boolean)
    consent: Mapped[str] = mapped_column(String(16))
    emergency_reason: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), index=True)  # await_consent | offered | assigned | unmatched
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_offer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    candidates: Mapped[list] = mapped_column(JSON, default=list)  # the ranking with scores and reasons


class Offer(Base):
    __tablename__ = "offers"

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
