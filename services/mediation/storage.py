"""Where attachment bytes live, behind a small interface a county can point elsewhere.

    storage = storage_from_env()          # local disk under var/attachments by default
    key = storage.put(case_no, data)      # content-addressed: the same bytes give the same key
    data = storage.get(key)

The default `LocalDiskStorage` encrypts each file with the platform's data keys
(attachments are letters, photos and signed agreements: personal data). Another
backend (an object store, a document system) is any class with `put`, `get` and
`delete`, named by MEDIATION_ATTACHMENT_STORAGE="package.module:Class"; it is
constructed with no arguments and reads its own settings from the environment.

What may be attached is checked here, before anything is stored: the declared
content type must be allowed AND the bytes must look like that type (a file's
first bytes), and the size must be within MEDIATION_ATTACHMENT_MAX_BYTES.
"""
from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Protocol

from services.common import config, privacy

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
KINDS = ("photo", "letter", "agreement", "other")
# content type -> (file suffix, accepted leading bytes)
ALLOWED_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "image/jpeg": (".jpg", (b"\xff\xd8\xff",)),
    "image/png": (".png", (b"\x89PNG\r\n\x1a\n",)),
    "image/webp": (".webp", (b"RIFF",)),
    "application/pdf": (".pdf", (b"%PDF-",)),
}


class AttachmentRefused(ValueError):
    def __init__(self, message: str, field: str, status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


def max_bytes() -> int:
    return config.get_int("MEDIATION_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES)


def check(kind: str, content_type: str, data: bytes) -> None:
    """Refuse what may not be attached: unknown kind, type not allowed or not matching the bytes, too large."""
    if kind not in KINDS:
        raise AttachmentRefused(f"kind must be one of {', '.join(KINDS)}", "kind")
    if content_type not in ALLOWED_TYPES:
        raise AttachmentRefused(f"content type {content_type!r} is not allowed; allowed: "
                                f"{', '.join(ALLOWED_TYPES)}", "content_type", 415)
    if not data:
        raise AttachmentRefused("the file is empty", "body")
    if len(data) > max_bytes():
        raise AttachmentRefused(f"the file is larger than {max_bytes()} bytes", "body", 413)
    _suffix, magics = ALLOWED_TYPES[content_type]
    if not any(data.startswith(magic) for magic in magics) or (content_type == "image/webp" and data[8:12] != b"WEBP"):
        raise AttachmentRefused(f"the bytes are not a {content_type} file", "content_type", 415)


class AttachmentStorage(Protocol):
    def put(self, case_no: str, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class LocalDiskStorage:
    """Files under a directory (default var/attachments), one sub-directory per case, encrypted."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("MEDIATION_ATTACHMENT_DIR") or config.var_dir() / "attachments")

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"bad storage key {key!r}")
        return path

    def put(self, case_no: str, data: bytes) -> str:
        key = f"{case_no}/{hashlib.sha256(data).hexdigest()}"
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(privacy.keyring().encrypt(data))
            os.replace(tmp, path)
        return key

    def get(self, key: str) -> bytes:
        return privacy.keyring().decrypt(self._path(key).read_bytes())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def storage_from_env() -> AttachmentStorage:
    spec = os.environ.get("MEDIATION_ATTACHMENT_STORAGE", "local")
    if spec == "local":
        return LocalDiskStorage()
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)()
