"""Per-source API keys and staff credentials are stored hashed: the stored row never holds the
secret, and the gateway accepts the secret (not the stored value) at the door."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import bcrypt
import pytest
from sqlalchemy import text

from services.common.clock import ManualClock
from services.common.db import Database
from services.gateway import auth
from services.gateway.bootstrap import create_api_key, load_accounts
from services.gateway.models import Base


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'gateway.db'}", Base.metadata, "gateway",
                        ManualClock(datetime(2026, 11, 29, tzinfo=timezone.utc)))
    database.create_all()
    yield database
    database.dispose()


def raw_rows(db, table: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}"))]


def test_a_source_key_is_stored_only_as_its_sha256(db):
    key = create_api_key("hotline-12345", ["hotline"], db)
    assert key.startswith("ll_") and len(key) > 40
    rows = raw_rows(db, "api_keys")
    assert len(rows) == 1
    assert key not in repr(rows) and key[3:] not in repr(rows)
    assert hashlib.sha256(key.encode()).hexdigest() in rows[0]


def test_a_new_key_for_the_same_source_replaces_the_old_one(db):
    first = create_api_key("petition", ["petition"], db)
    second = create_api_key("petition", ["petition"], db)
    stored = {row[0] for row in raw_rows(db, "api_keys")}
    assert stored == {auth.hash_api_key(second)} and auth.hash_api_key(first) not in stored


def test_staff_passwords_are_stored_as_bcrypt_and_checked_against_the_hash(db, monkeypatch):
    monkeypatch.setenv("LANLING_STAFF_INITIAL_PASSWORD", "an-initial-Passw0rd")
    created = load_accounts([{"username": "mt-001-1", "role": "mediator", "directory_id": "MT-001-1"},
                             {"username": "head-001", "role": "township_head", "township": "001"}], db)
    assert created == 2
    rows = raw_rows(db, "staff_accounts")
    assert "an-initial-Passw0rd" not in repr(rows)
    with db.reading() as session:
        from services.gateway.models import StaffAccount

        for account in session.query(StaffAccount):
            assert account.password_hash.startswith("$2b$12$")  # bcrypt, cost 12
            assert bcrypt.checkpw(b"an-initial-Passw0rd", account.password_hash.encode())
            assert auth.check_password("an-initial-Passw0rd", account.password_hash)
            assert not auth.check_password("wrong", account.password_hash)
            assert not auth.check_password(account.password_hash, account.password_hash)  # the hash is no password
            assert account.must_change_password


SECRET = "a-token-secret-of-at-least-32-bytes-0123"


def test_tokens_are_signed_and_expire():
    now = datetime.now(timezone.utc).replace(microsecond=0)
    principal = auth.Principal(kind="staff", id="mt-001-1", role="mediator", directory_id="MT-001-1")
    token = auth.issue_token(principal, SECRET, now)
    assert auth.read_token(token, SECRET, now) == principal
    assert auth.read_token(token, "another-secret-of-the-same-length-0123", now) is None
    assert auth.read_token(token, SECRET, now + auth.TOKEN_TTL - timedelta(seconds=1)) == principal
    assert auth.read_token(token, SECRET, now + auth.TOKEN_TTL) is None  # exp is the first instant refused
    head, body, signature = token.split(".")
    tampered = token.replace(body, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"))
    assert auth.read_token(tampered, SECRET, now) is None


def test_an_unsigned_token_is_refused():
    import jwt

    now = datetime.now(timezone.utc)
    forged = jwt.encode({"sub": "x", "kind": "operator", "role": "operator", "exp": int(now.timestamp()) + 60},
                        key=None, algorithm="none")
    assert auth.read_token(forged, SECRET, now) is None
