"""Identities created outside a request: source systems' API keys, staff accounts."""
from __future__ import annotations

from sqlalchemy import select

from services.common import config
from services.common.clock import SystemClock
from services.common.db import Database
from services.gateway import auth
from services.gateway.models import ApiKey, Base, StaffAccount


def database() -> Database:
    return Database(config.db_url("gateway"), Base.metadata, "gateway", SystemClock())


def create_api_key(name: str, channels: list[str], db: Database | None = None) -> str:
    """A new key for a source system; only its hash is stored. Replaces the system's old key."""
    db = db or database()
    key = auth.new_api_key()
    with db.transaction() as uow:
        old = uow.session.scalar(select(ApiKey).where(ApiKey.name == name))
        if old is not None:
            uow.session.delete(old)
            uow.session.flush()
        uow.session.add(ApiKey(key_hash=auth.hash_api_key(key), name=name, channels=channels, created_at=uow.now))
    return key


def load_accounts(accounts: list[dict], db: Database | None = None) -> int:
    """Create the staff accounts that do not exist yet, all with the initial password.

    One bcrypt hash serves every new account (hashing thousands one by one takes minutes);
    each must change the password at first login.
    """
    db = db or database()
    password_hash = auth.hash_password(config.secret("LANLING_STAFF_INITIAL_PASSWORD"))
    with db.transaction() as uow:
        existing = set(uow.session.scalars(select(StaffAccount.username)))
        new = [a for a in accounts if a["username"] not in existing]
        for account in new:
            uow.session.add(StaffAccount(
                username=account["username"], password_hash=password_hash, role=account["role"],
                directory_id=account.get("directory_id"), township=account.get("township"),
                display_name=account.get("display_name"), active=True, must_change_password=True,
                created_at=uow.now,
            ))
    return len(new)
