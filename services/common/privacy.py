"""Personal data: encryption at rest, keyed hashes for matching, masking for display.

Keys come from the environment (see `config.secret`):
- LANLING_DATA_KEYS: comma-separated Fernet keys, newest first. Encrypt with the
  first, decrypt with any, so a key can be rotated without downtime (docs/security.md).
- LANLING_HASH_KEY: HMAC key for the keyed hashes used to match phones and ID numbers.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.common import config

PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
ID_NUMBER = re.compile(r"(?<![\dXx])(\d{6})(\d{8})(\d{3}[\dXx])(?![\dXx])")
LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-?(\d{3,4})(\d{4})(?!\d)")


@lru_cache(maxsize=None)
def _keyring(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


def keyring() -> MultiFernet:
    return _keyring(config.secret("LANLING_DATA_KEYS"))


def encrypt(text: str | None) -> str | None:
    if text is None:
        return None
    return keyring().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return keyring().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise ValueError("personal data cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    return keyring().rotate(token.encode("ascii")).decode("ascii")


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone or "")
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def keyed_hash(value: str | None, kind: str = "") -> str | None:
    """Stable HMAC of a normalised identifier, for equality matching without storing it."""
    if not value:
        return None
    normalised = normalise_phone(value) if kind == "phone" else value.strip().upper()
    key = config.secret("LANLING_HASH_KEY").encode()
    return hmac.new(key, f"{kind}:{normalised}".encode("utf-8"), hashlib.sha256).hexdigest()


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = normalise_phone(phone)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * len(digits)


def mask_name(name: str | None) -> str | None:
    """王小明 -> 王**, 欧阳娜娜 -> 欧***; keeps only the first character."""
    if not name:
        return name
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1)


def mask_id_number(number: str | None) -> str | None:
    if not number:
        return number
    return f"{number[:4]}**********{number[-4:]}" if len(number) >= 8 else "*" * len(number)


def mask_text(text: str | None) -> str | None:
    """Mask phone and ID-card numbers wherever they appear in free text (logs, messages)."""
    if not text:
        return text
    text = ID_NUMBER.sub(lambda m: f"{m.group(1)[:4]}**********{m.group(3)[-4:]}", text)
    text = PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
