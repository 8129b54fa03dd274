"""Key rotation: with a new key first in LANLING_DATA_KEYS, old data stays readable, and
`lanling rotate-keys` re-encrypts every stored value so the old key can be dropped."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from services.common import privacy, rotation
from services.common.clock import ManualClock
from services.common.db import Database
from services.mediation.storage import LocalDiskStorage
from services.notify.models import Base, DutyAssignment

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
NOW = datetime(2026, 11, 29, 8, tzinfo=timezone.utc)


def use_keys(monkeypatch, *keys):
    monkeypatch.setenv("LANLING_DATA_KEYS", ",".join(keys))


@pytest.fixture
def notify_db(tmp_path, monkeypatch):
    use_keys(monkeypatch, OLD)
    db = Database(f"sqlite:///{tmp_path / 'notify.db'}", Base.metadata, "notify", ManualClock(NOW))
    db.create_all()
    with db.transaction() as uow:
        for i in range(3):
            uow.session.add(DutyAssignment(role="on_duty", township="001", staff_id=f"S{i}", phone=f"1381234567{i}",
                                       email=f"s{i}@example.org", source="manual", created_at=NOW))
        # a message whose sealed fields are encrypted, as contracts.fields.Sealed writes them
        uow.publish("intake.egress", "hotline.case_resolved", {"case_no": "371324-20261129-000001", "person": {
            "name": privacy.encrypt("王秀英"), "phone": privacy.encrypt("13812345678")}, "status": "resolved"})
    yield db
    db.dispose()


def raw(db, sql):
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def decrypts_with(token: str, key: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
        return True
    except InvalidToken:
        return False


def test_rotation_re_encrypts_every_column_and_the_outbox_under_the_new_key(notify_db, monkeypatch, tmp_path):
    phones = raw(notify_db, "SELECT phone, email FROM duty_roster")
    assert all(decrypts_with(p, OLD) and decrypts_with(e, OLD) for p, e in phones)
    use_keys(monkeypatch, NEW, OLD)                       # step 1: the new key first, the old still readable
    with notify_db.reading() as session:
        assert sorted(r.phone for r in session.scalars(select(DutyAssignment))) == [f"1381234567{i}" for i in range(3)]
    dry = rotation.rotate_database("notify", str(notify_db.engine.url), dry_run=True)
    assert dry.left == 3 * 2 + 2  # six column values and the two sealed fields of the outbox message

    report = rotation.rotate_database("notify", str(notify_db.engine.url))   # step 2: rotate-keys
    assert report.rotated["duty_roster.phone"] == 3 and report.rotated["duty_roster.email"] == 3
    assert report.rotated["outbox.body"] == 2 and report.left == 0
    assert rotation.count_under_old_keys("notify", str(notify_db.engine.url)) == 0
    for phone, email in raw(notify_db, "SELECT phone, email FROM duty_roster"):
        assert decrypts_with(phone, NEW) and not decrypts_with(phone, OLD)
    body = raw(notify_db, "SELECT body FROM outbox")[0][0]
    assert b"13812345678" not in bytes(body)

    use_keys(monkeypatch, NEW)                            # step 3: the old key removed
    with notify_db.reading() as session:
        assert sorted(r.email for r in session.scalars(select(DutyAssignment))) == [f"s{i}@example.org" for i in range(3)]
    import json

    person = json.loads(bytes(body))["person"]
    assert privacy.decrypt(person["phone"]) == "13812345678" and privacy.decrypt(person["name"]) == "王秀英"
    assert rotation.rotate_database("notify", str(notify_db.engine.url)).rotated["duty_roster.phone"] == 0


def test_without_rotation_dropping_the_old_key_makes_data_unreadable(notify_db, monkeypatch):
    use_keys(monkeypatch, NEW)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        with notify_db.reading() as session:
            list(session.scalars(select(DutyAssignment)))


def test_a_value_changed_meanwhile_is_not_overwritten(notify_db, monkeypatch):
    use_keys(monkeypatch, NEW, OLD)
    real_rotate = privacy.rotate

    def rotate_while_a_service_writes(token):
        with notify_db.transaction() as uow:   # the service writes the row between read and update
            for row in uow.session.scalars(select(DutyAssignment).where(DutyAssignment.staff_id == "S0")):
                row.phone = "13900000000"
        return real_rotate(token)

    monkeypatch.setattr(privacy, "rotate", rotate_while_a_service_writes)
    report = rotation.rotate_database("notify", str(notify_db.engine.url))
    monkeypatch.setattr(privacy, "rotate", real_rotate)
    with notify_db.reading() as session:
        assert session.scalar(select(DutyAssignment.phone).where(DutyAssignment.staff_id == "S0")) == "13900000000"
    assert report.left >= 1


def test_attachment_files_are_re_encrypted(tmp_path, monkeypatch):
    use_keys(monkeypatch, OLD)
    storage = LocalDiskStorage(tmp_path / "attachments")
    key = storage.put("371324-20261129-000001", b"%PDF-1.4 the ID card scan")
    use_keys(monkeypatch, NEW, OLD)
    assert rotation.rotate_files(tmp_path / "attachments").rotated["files"] == 1
    use_keys(monkeypatch, NEW)
    assert storage.get(key) == b"%PDF-1.4 the ID card scan"
    assert b"ID card" not in (tmp_path / "attachments" / key).read_bytes()
