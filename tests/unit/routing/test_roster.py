"""Staff edits of the directory: validation, ids, scope, and what the county's data must keep."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.common.clock import ManualClock
from services.common.db import Database
from services.contracts.errors import Conflict, Forbidden, Invalid, NotFound
from services.routing import handlers, roster
from services.routing.directory import Directory
from services.routing.models import Base, DirectoryChange

DIRECTORY = Directory.from_reference()
SUPERVISOR = {"id": "supervisor-1", "role": "county_supervisor"}
HEAD_009 = {"id": "head-009", "role": "township_head", "township": "371324-009"}
NEW_MEDIATOR = {"name": "赵新民", "phone": "138 0000 9999", "level": "township", "township": "南桥镇",
                "specialties": ["邻里纠纷", "婚姻家庭"]}


def plan(actor, kind, action, key=None, data=None, reason=None):
    return roster.plan_edit(DIRECTORY, actor, kind, action, key, data, reason)


def test_a_new_township_mediator_gets_the_next_seat_defaults_and_an_account():
    edit, changed = plan(SUPERVISOR, "mediators", "create", data=NEW_MEDIATOR)
    seats = len(DIRECTORY.mediators(level="township", township="371324-009"))
    assert edit.key == f"MT-009-{seats + 1}" and edit.changed
    record = changed.mediator(edit.key)
    assert (record.phone, record.centre, record.capacity, record.full_time) == ("13800009999", "371324-009-TJ", 8, True)
    assert edit.accounts == [{"username": edit.key.lower(), "role": "mediator", "directory_id": edit.key,
                              "township": "371324-009", "display_name": "赵新民", "active": True}]
    assert DIRECTORY.mediator(edit.key) is None  # the old directory is untouched


@pytest.mark.parametrize("data, field", [
    ({**NEW_MEDIATOR, "phone": "12345"}, "phone"),
    ({**NEW_MEDIATOR, "specialties": ["打麻将"]}, "specialties.0"),
    ({**NEW_MEDIATOR, "level": "province"}, "level"),
    ({**NEW_MEDIATOR, "township": "北京"}, "township"),
    ({**NEW_MEDIATOR, "salary": 3000}, "salary"),
    ({**NEW_MEDIATOR, "full_time": "yes"}, "full_time"),
    ({k: v for k, v in NEW_MEDIATOR.items() if k != "name"}, "name"),
    ({**NEW_MEDIATOR, "level": "village", "village": "371324-009-999"}, "village"),
    ({**NEW_MEDIATOR, "recusal_villages": ["371324-009-999"]}, "directory"),
])
def test_invalid_edits_name_the_field(data, field):
    with pytest.raises(Invalid) as refused:
        plan(SUPERVISOR, "mediators", "create", data=data)
    assert field in refused.value.fields, refused.value.fields


def test_only_supervisors_and_heads_in_their_own_township_may_edit():
    with pytest.raises(Forbidden):
        plan({"id": "mt-009-1", "role": "mediator", "township": "371324-009"}, "mediators", "create", data=NEW_MEDIATOR)
    assert plan(HEAD_009, "mediators", "create", data=NEW_MEDIATOR)[0].key.startswith("MT-009-")
    with pytest.raises(Forbidden):
        plan({**HEAD_009, "township": "371324-001"}, "mediators", "create", data=NEW_MEDIATOR)
    with pytest.raises(Forbidden):
        plan(HEAD_009, "mediators", "update", "MC-01-1", {"capacity": 12})
    with pytest.raises(Forbidden):
        plan(HEAD_009, "units", "update", "U-HOUSING", {"phone": "0539-0012345"})


def test_an_update_changes_only_what_is_given_and_a_repeat_changes_nothing():
    edit, changed = plan(SUPERVISOR, "mediators", "update", "MT-009-1", {"capacity": 12, "specialties": ["医疗纠纷"]})
    before = DIRECTORY.mediator("MT-009-1")
    after = changed.mediator("MT-009-1")
    assert (after.capacity, after.specialties, after.name) == (12, ("医疗纠纷",), before.name)
    same, _ = plan(SUPERVISOR, "mediators", "update", "MT-009-1", {"capacity": before.capacity})
    assert not same.changed
    with pytest.raises(NotFound):
        plan(SUPERVISOR, "mediators", "update", "MT-404-1", {"capacity": 1})


def test_deactivation_needs_a_reason_and_warns_when_a_village_is_left_without_a_mediator():
    village = next(v for v in DIRECTORY.villages() if len(DIRECTORY.mediators(village=v.code)) == 1)
    only = DIRECTORY.mediators(village=village.code)[0]
    with pytest.raises(Invalid, match="reason"):
        plan(SUPERVISOR, "mediators", "deactivate", only.id)
    edit, changed = plan(SUPERVISOR, "mediators", "deactivate", only.id, reason="调离")
    assert not changed.mediator(only.id).active and not edit.accounts[0]["active"]
    assert any(village.name in warning for warning in edit.warnings)


def test_a_new_grid_worker_replaces_the_current_one():
    grid = DIRECTORY.grid("371324-009-004-01")
    edit, changed = plan(HEAD_009, "grid_workers", "create", data={"grid": grid.code, "name": "孙立新",
                                                                   "phone": "13900009999"})
    assert edit.key == "GW-009-004-01-2" and changed.grid(grid.code).grid_worker == edit.key
    assert not changed.grid_worker(grid.grid_worker).active
    assert [a["active"] for a in edit.accounts] == [True, False]
    with pytest.raises(Conflict):
        plan(SUPERVISOR, "grid_workers", "deactivate", grid.grid_worker, reason="离职")
    with pytest.raises(Invalid):
        plan(SUPERVISOR, "grid_workers", "update", grid.grid_worker, {"grid": "371324-009-004-02"})


def test_units_keep_one_owner_per_dispute_type():
    with pytest.raises(Conflict) as taken:
        plan(SUPERVISOR, "units", "update", "U-HOUSING", {"dispute_types": ["物业纠纷", "医疗纠纷"]})
    assert "U-MEDICAL-COMMITTEE" in str(taken.value)
    edit, changed = plan(SUPERVISOR, "units", "create", data={
        "code": "U-TAX", "name": "县税务局", "kind": "department", "phone": "0539-0099999"})
    assert changed.unit("U-TAX").name == "县税务局" and edit.accounts == []
    with pytest.raises(Conflict):
        roster.plan_edit(changed, SUPERVISOR, "units", "create", None,
                         {"code": "U-TAX", "name": "x", "kind": "department"})


def test_staff_records_link_accounts_to_directory_ids():
    head, _ = plan(SUPERVISOR, "staff", "create", data={"role": "township_head", "township": "371324-009",
                                                        "name": "钱进", "phone": "13700009999",
                                                        "email": "qian@lanling.example"})
    assert head.key == "TH-009-2" and head.accounts[0]["username"] == "head-009-2"
    liaison, _ = plan(SUPERVISOR, "staff", "create", data={"role": "unit_liaison", "unit": "U-HOUSING",
                                                           "name": "周立", "phone": "13700009998",
                                                           "email": "zhou@lanling.example"})
    assert liaison.accounts[0]["directory_id"] == "U-HOUSING"  # a liaison signs for the unit
    assert liaison.accounts[0]["username"] == "liaison-housing-2"
    assert roster.masked("staff", liaison.after)["email"] == "z***@lanling.example"


# --- stored: versions, events, the audit, and the reference loader --------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('roster')}/routing.db", Base.metadata, "routing",
                        ManualClock(datetime(2026, 11, 30, tzinfo=timezone.utc)))
    database.create_all()
    with database.transaction() as uow:
        handlers.load_reference(uow, DIRECTORY)
    yield database
    database.dispose()


def edit(db, *args, **kwargs):
    with db.transaction() as uow:
        answer = handlers.edit_directory(uow, *args, **kwargs)
        return answer, [(e.type, e.data) for e in uow.emitted]


def test_every_stored_edit_bumps_the_version_emits_directory_updated_and_is_audited(db):
    first, events = edit(db, SUPERVISOR, "mediators", "create", None, NEW_MEDIATOR)
    assert [t for t, _ in events] == ["directory_updated"] and events[0][1]["version"] == first["version"]
    assert first["record"]["phone"] == "138****9999"  # masked in answers
    second, events = edit(db, SUPERVISOR, "mediators", "deactivate", first["key"], None, reason="试用期满未续聘")
    assert second["version"] == first["version"] + 1 == events[0][1]["version"]
    again, events = edit(db, SUPERVISOR, "mediators", "deactivate", first["key"], None, reason="试用期满未续聘")
    assert again["unchanged"] and again["version"] == second["version"] and events == []
    with db.reading() as session:
        directory = handlers.current_directory(session)
        audit = handlers.directory_changes(session, key=first["key"])
        rows = session.query(DirectoryChange).filter_by(key=first["key"]).count()
    assert not directory.mediator(first["key"]).active
    assert [a["action"] for a in audit] == ["deactivated", "created"] and rows == 2
    assert audit[0]["reason"] == "试用期满未续聘" and audit[0]["before"]["phone"] == "138****9999"


def test_a_grid_worker_change_reaches_intake_in_the_places_snapshot(db):
    answer, events = edit(db, HEAD_009, "grid_workers", "create", None,
                          {"grid": "371324-009-010-01", "name": "孙新", "phone": "13900008888"})
    grids = {g["code"]: g for g in events[0][1]["places"]["grids"]}
    assert grids["371324-009-010-01"]["grid_worker"] == answer["key"]


def test_load_reference_keeps_staff_edits_unless_forced(db):
    with db.transaction() as uow:
        assert handlers.load_reference(uow, DIRECTORY) == "unchanged"
        assert [e.type for e in uow.emitted] == ["directory_updated"]  # a fresh intake still gets places
    changed = DIRECTORY.with_records({"units": [{**DIRECTORY.record("units", "U-HOUSING"), "phone": "0539-0012345"}]})
    with db.transaction() as uow:
        assert handlers.load_reference(uow, changed) == "kept"
    with db.reading() as session:
        assert handlers.current_directory(session).unit("U-HOUSING").phone != "0539-0012345"
    with db.transaction() as uow:
        assert handlers.load_reference(uow, changed, force=True) == "loaded"
    with db.reading() as session:
        directory = handlers.current_directory(session)
    assert directory.unit("U-HOUSING").phone == "0539-0012345"
    assert directory.to_records() == changed.to_records()  # the staff edits are gone, as asked
