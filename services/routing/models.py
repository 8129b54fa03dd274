"""Routing's tables: the directory (with its version and the audit of its changes), every
routing decision with its reasons, the state of each routed case, and mediators' open cases."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
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
    """Bumped on every change, so each replica knows when to rebuild its in-memory directory.

    `digest` fingerprints the content (a full hash after a reference load, chained through each
    edit); `reference_digest` is the hash of the reference data last loaded and `edits` counts
    staff edits since, so `lanling load-reference` never silently overwrites a county's edits."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reference_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    edits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DirectoryChange(Base):
    """Append-only audit of the directory: who changed which record, when, why, before and after."""

    __tablename__ = "directory_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))  # created | updated | deactivated | reference_loaded
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    before: Mapped[dict | None] = mapped_column(EncryptedJSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(EncryptedJSON, nullable=True)


class RoutingDecision(Base):
    """Where a case went on each attempt (first routing, re-routing after a return, escalation,
    the parties' own choice) and how that attempt ended."""

    __tablename__ = "routing_decisions"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    facts: Mapped[dict] = mapped_column(JSON)
    classification: Mapped[dict] = mapped_column(JSON)
    decision: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    trigger: Mapped[str] = mapped_column(String(32), default="received", server_default="received")
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)  # returned | escalated | ...
    outcome_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)  # masked by mediation
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RoutedCase(Base):
    """Where each case stands for routing: its latest attempt, whether it is still open, and
    whom it must never go back to (everyone who returned it)."""

    __tablename__ = "routed_cases"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)  # 0 while only a case_closed has been heard
    status: Mapped[str] = mapped_column(String(16))  # open | resolved | closed
    returned_mediators: Mapped[list] = mapped_column(JSON, default=list)
    returned_units: Mapped[list] = mapped_column(JSON, default=list)
    handled_by: Mapped[list] = mapped_column(JSON, default=list)  # every mediator or worker who held it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OpenAssignment(Base):
    """A mediator's open case, for ranking by load against capacity."""

    __tablename__ = "open_assignments"

    case_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    mediator_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
