"""The gateway's tables: identities (DESIGN §2) and the audit of unmasked views."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import UTCDateTime, make_base

Base = make_base()


class ApiKey(Base):
    """A source system's key (stored hashed) and the channels it may submit on."""

    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channels: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    directory_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    township: Mapped[str | None] = mapped_column(String(32), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UnmaskedView(Base):
    """Who saw personal data unmasked, of which case (or counsellor), when, through which request.

    Written before the data is returned: no record, no view (services/gateway/audit.py)."""

    __tablename__ = "unmasked_views"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[str] = mapped_column(String(100), index=True)
    actor_role: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    subject: Mapped[str] = mapped_column(String(100))  # agreement_full, attachment:<id>, counsellor:<id>, ...
    request: Mapped[str] = mapped_column(String(200))  # method and path
