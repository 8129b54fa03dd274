"""Routing's tables: the directory, its version, and every routing decision with its reasons."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import EncryptedJSON, UTCDateTime, make_base

Base = make_base()


class DirectoryRecord(Base):
    """One entity of the directory (a township, grid, mediator, unit …) as its plain record.

    Stored encrypted: the roster holds staff names and phones.
    """

    __tablename__ = "directory_records"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict] = mapped_column(EncryptedJSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DirectoryVersion(Base):
    """Bumped on every change, so each replica knows when to rebuild its in-memory directory."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RoutingDecision(Base):
    """Where a case went on each attempt (first routing, re-routing after a return, escalation)."""

    __tablename__ = "routing_decisions"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    facts: Mapped[dict] = mapped_column(JSON)
    classification: Mapped[dict] = mapped_column(JSON)
    decision: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OpenAssignment(Base):
    """A mediator's open case, for ranking by load against capacity."""

    __tablename__ = "open_assignments"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    mediator_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
