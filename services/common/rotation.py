"""`lanling rotate-keys`: re-encrypt stored personal data under the newest data key.

LANLING_DATA_KEYS holds Fernet keys, newest first: the newest encrypts, every key decrypts.
After a new key is put first (and every service restarted with it), this re-encrypts what is
stored under older keys, in every service's database: each `Encrypted`/`EncryptedJSON` column,
the sealed fields inside the outbox's message bodies, and mediation's attachment files. Once it
reports nothing left under an old key, that key can be removed (docs/security.md).

Each value is replaced only if it is still the one read (compare-and-set), so a service writing
the same row meanwhile is never overwritten; run it again until it reports 0 left.
"""
from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import String, and_, select, type_coerce, update

from services.common import config, privacy
from services.common.db import Encrypted, EncryptedJSON, make_engine

SERVICES_WITH_DATA = ("intake", "routing", "mediation", "psych", "notify", "gateway")
TOKEN = re.compile(r"^gAAAAA[A-Za-z0-9_=-]{20,}$")
PAGE = 500


@dataclass
class Report:
    service: str
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" -> values re-encrypted
    left: int = 0  # values still under an old key (a dry run; or changed meanwhile)

    def line(self) -> str:
        parts = ", ".join(f"{name} {n}" for name, n in sorted(self.rotated.items()) if n) or "nothing to re-encrypt"
        return f"{self.service}: {parts}; {self.left} left under an old key"


def _newest() -> Fernet:
    keys = [k.strip() for k in config.secret("LANLING_DATA_KEYS").split(",") if k.strip()]
    return Fernet(keys[0].encode())


def under_old_key(token: str, newest: Fernet) -> bool:
    try:
        newest.decrypt(token.encode("ascii"))
        return False
    except InvalidToken:
        return True


def _rotate_json(value, newest: Fernet, dry_run: bool = False):
    """The document with every sealed string under an old key re-encrypted; (document, count)."""
    if isinstance(value, str) and TOKEN.match(value) and under_old_key(value, newest):
        return (value if dry_run else privacy.rotate(value)), 1
    if isinstance(value, dict):
        count = 0
        out = {}
        for key, item in value.items():
            out[key], n = _rotate_json(item, newest, dry_run)
            count += n
        return out, count
    if isinstance(value, list):
        count = 0
        out = []
        for item in value:
            rotated, n = _rotate_json(item, newest, dry_run)
            out.append(rotated)
            count += n
        return out, count
    return value, 0


def metadata(service: str):
    return importlib.import_module(f"services.{service}.models").Base.metadata


def _pages(conn, table, columns):
    pk = list(table.primary_key.columns)
    offset = 0
    while True:
        rows = conn.execute(select(*pk, *columns).order_by(*pk).limit(PAGE).offset(offset)).all()
        if not rows:
            return
        yield pk, rows
        offset += PAGE


def rotate_database(service: str, url: str | None = None, *, dry_run: bool = False) -> Report:
    report = Report(service)
    newest = _newest()
    engine = make_engine(url or config.db_url(service), pool_size=1)
    try:
        for table in metadata(service).sorted_tables:
            sealed = [c for c in table.columns if isinstance(c.type, (Encrypted, EncryptedJSON))]
            for column in sealed:  # the raw stored text, not decrypted by the column type
                raw = type_coerce(column, String).label(column.name)
                name = f"{table.name}.{column.name}"
                report.rotated.setdefault(name, 0)
                with engine.connect() as conn:
                    pages = list(_pages(conn, table, [raw]))
                for pk, rows in pages:
                    for row in rows:
                        token = row[-1]
                        if token is None or not under_old_key(token, newest):
                            continue
                        if dry_run:
                            report.left += 1
                            continue
                        key = and_(*(c == row[i] for i, c in enumerate(pk)))
                        with engine.begin() as conn:
                            done = conn.execute(update(table).where(key, type_coerce(column, String) == token)
                                                .values({column.name: type_coerce(privacy.rotate(token), String)}))
                        if done.rowcount:
                            report.rotated[name] += 1
                        else:
                            report.left += 1  # changed meanwhile: the next run sees the new value
            if table.name == "outbox":
                report.rotated.setdefault("outbox.body", 0)
                _rotate_outbox(engine, table, newest, report, dry_run)
    finally:
        engine.dispose()
    return report


def _rotate_outbox(engine, table, newest, report: Report, dry_run: bool) -> None:
    """Message bodies carry sealed fields (contracts.fields.Sealed): re-encrypt those inside."""
    with engine.connect() as conn:
        pages = list(_pages(conn, table, [table.c.body]))
    for pk, rows in pages:
        for row in rows:
            body = row[-1]
            try:
                document = json.loads(bytes(body).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            rotated, count = _rotate_json(document, newest, dry_run)
            if not count:
                continue
            if dry_run:
                report.left += count
                continue
            new_body = json.dumps(rotated, ensure_ascii=False).encode("utf-8")
            key = and_(*(c == row[i] for i, c in enumerate(pk)))
            with engine.begin() as conn:
                done = conn.execute(update(table).where(key, table.c.body == body).values(body=new_body))
            if done.rowcount:
                report.rotated["outbox.body"] += count
            else:
                report.left += count


def rotate_files(root: Path | None = None, *, dry_run: bool = False) -> Report:
    """Mediation's attachments on local disk (LocalDiskStorage): each file is one Fernet token."""
    from services.mediation.storage import LocalDiskStorage

    report = Report("mediation attachments", {"files": 0})
    storage = LocalDiskStorage(root)
    newest = _newest()
    if not storage.root.exists():
        return report
    for path in sorted(p for p in storage.root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
        token = path.read_bytes().decode("ascii", "replace")
        if not under_old_key(token, newest):
            continue
        if dry_run:
            report.left += 1
            continue
        tmp = path.with_suffix(".rotating.tmp")
        tmp.write_bytes(privacy.keyring().rotate(path.read_bytes()))
        tmp.replace(path)
        report.rotated["files"] += 1
    return report


def rotate_all(services=SERVICES_WITH_DATA, *, dry_run: bool = False, urls: dict | None = None,
               attachments: Path | None = None, files: bool = True) -> list[Report]:
    reports = [rotate_database(service, (urls or {}).get(service), dry_run=dry_run) for service in services]
    if files and "mediation" in services:
        reports.append(rotate_files(attachments, dry_run=dry_run))
    return reports


def count_under_old_keys(service: str, url: str | None = None) -> int:
    return rotate_database(service, url, dry_run=True).left

