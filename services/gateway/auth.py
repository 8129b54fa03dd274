"""Identities at the edge: source-system API keys, staff accounts, signed tokens.

Pure functions; the gateway's service.py supplies the stored records.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import bcrypt
import jwt

ROLES = ("operator", "source", "county_supervisor", "psych_coordinator", "township_head", "mediator", "unit_liaison",
         "counsellor", "grid_worker", "receptionist", "citizen")
TOKEN_TTL = timedelta(hours=8)


@dataclass(frozen=True)
class Principal:
    kind: str  # operator | source | staff | citizen
    id: str
    role: str
    channels: tuple[str, ...] = ()  # for sources: the channels they may submit on
    township: str | None = None
    directory_id: str | None = None
    cases: tuple[str, ...] = field(default=())  # for citizens: the case they proved

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def may_submit(self, channel: str) -> bool:
        return self.is_operator or (self.kind == "source" and channel in self.channels)


OPERATOR = "operator"


def new_api_key() -> str:
    return "ll_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """API keys are long random strings, so a fast hash is enough to store them safely."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=12)).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


def issue_token(principal: Principal, secret: str, now: datetime, ttl: timedelta = TOKEN_TTL) -> str:
    claims = {
        "sub": principal.id,
        "kind": principal.kind,
        "role": principal.role,
        "township": principal.township,
        "dir": principal.directory_id,
        "cases": list(principal.cases),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, secret: str, now: datetime) -> Principal | None:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError:
        return None
    if claims.get("exp", 0) <= now.timestamp():  # RFC 7519: not accepted on or after exp
        return None
    return Principal(
        kind=claims["kind"], id=claims["sub"], role=claims["role"], township=claims.get("township"),
        directory_id=claims.get("dir"), cases=tuple(claims.get("cases") or ()),
    )
