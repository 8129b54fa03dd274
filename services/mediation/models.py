"""Mediation's tables: the workflow state of each case and its append-only timeline."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import EncryptedJSON, UTCDateTime, make_base

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
