"""The in-memory directory: lookups, building from records, the places snapshot."""
from __future__ import annotations

import json

import pytest

from services.routing.directory import Directory, DirectoryError, distance_km


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.from_reference()


@pytest.fixture()
def records(directory) -> dict:
    return directory.to_records()


@pytest.mark.parametrize("query", ["371324-001", "卞庄街道", "卞庄", "卞庄街道办事处", " 卞庄 "])
def test_township_by_code_name_or_alias(directory, query):
    assert directory.township(query).code == "371324-001"


@pytest.mark.parametrize("query", ["兰陵", "苍山", "兰陵县", "", None, "371324-019"])
def test_ambiguous_or_unknown_township_names_do_not_resolve(directory, query):
    assert directory.township(query) is None


def test_townships_by_their_own_names(directory):
    assert directory.township("兰陵镇").code == "371324-003"
    assert directory.township("苍山街道").code == "371324-002"
    assert directory.township("下村").name == "下村乡"


def test_places_nest(directory):
    assert sum(len(directory.grids_of_township(t.code)) for t in directory.townships()) == 1229
    assert sum(len(directory.work_areas_of_township(t.code)) for t in directory.townships()) == 161
    grid = directory.grids_of_township("371324-010")[0]
    village = directory.village_of_grid(grid.code)
    assert village.code == grid.village and village.township == "371324-010"
    area = directory.work_area_of_village(village.code)
    assert area.township == "371324-010"
    assert village in directory.villages_of_work_area(area.code)
    assert grid in directory.grids_of_village(village.code)
    assert directory.grid_worker_of_grid(grid.code).grid == grid.code
    assert directory.location(grid.code) == (village.lat, village.lon)


def test_unknown_codes_give_none(directory):
    assert directory.grid("371324-099-001-01") is None
    assert directory.village_of_grid("nope") is None
    assert directory.work_area_of_village("nope") is None
    assert directory.location("nope") is None
    assert directory.grids_of_township("nope") == []


def test_find_villages_with_or_without_suffix(directory):
    village = directory.villages_of_township("371324-012")[5]
    bare = village.name.removesuffix("村").removesuffix("社区")
    assert directory.find_villages(village.name) == [village]
    assert directory.find_villages(bare, township="371324-012") == [village]
    assert directory.find_villages(village.name, township="371324-001") == []


def test_room_guiding_each_township(directory):
    for township in directory.townships():
        room = directory.room_guiding(township.code)
        assert township.code in room.guides
    assert directory.room_guiding("nope") is None


def test_units_owning_a_type_lead_first(directory):
    medical = [u.code for u in directory.units_owning("医疗纠纷")]
    assert medical[0] == "U-MEDICAL-COMMITTEE" and "U-HEALTH" in medical[1:]
    assert directory.owner_of("劳动争议").code == "U-LABOUR-ARBITRATION"
    assert [u.code for u in directory.co_handlers_of("征地拆迁")] == ["U-HOUSING"]
    assert directory.owner_of("城市管理").name == "县综合行政执法局"
    assert [u.code for u in directory.units_for_category("教育文体")] == ["U-EDUCATION"]


def test_mediator_filters(directory):
    county = directory.mediators(level="county")
    assert len(county) == 41 and all(m.level == "county" for m in county)
    in_township = directory.mediators(township="卞庄")
    assert {m.level for m in in_township} == {"township", "village"}
    assert all(m.township == "371324-001" for m in in_township)
    labour = directory.mediators(level="township", specialty="劳动争议")
    assert labour and all("劳动争议" in m.specialties for m in labour)
    village = directory.villages_of_township("371324-004")[0]
    assert all(m.village == village.code for m in directory.mediators(village=village.code))
    room = directory.mediators(room="371324-TJ-01")
    assert [m.id for m in room][0] == "MC-01-1"
    assert directory.mediators(village="nope") == []


def test_inactive_mediators_are_hidden_unless_asked(records):
    records["mediators"][0]["active"] = False
    directory = Directory.from_records(records)
    hidden = records["mediators"][0]["id"]
    assert hidden not in {m.id for m in directory.mediators(level="county")}
    assert hidden in {m.id for m in directory.mediators(level="county", active_only=False)}


def test_records_round_trip(directory, records):
    rebuilt = Directory.from_records(json.loads(json.dumps(records, ensure_ascii=False)))
    assert rebuilt.to_records() == records
    assert rebuilt.places_snapshot() == directory.places_snapshot()


def test_dangling_references_are_all_reported(records):
    records["grids"][0]["village"] = "371324-001-999"
    records["mediators"][0]["room"] = "371324-TJ-99"
    records["units"][0]["dispute_types"] = ["不存在的类型"]
    with pytest.raises(DirectoryError) as raised:
        Directory.from_records(records)
    problems = " | ".join(raised.value.problems)
    assert "371324-001-999" in problems and "371324-TJ-99" in problems and "不存在的类型" in problems


def test_malformed_records_are_rejected(records):
    records["villages"][0]["population"] = 100
    del records["townships"][0]["aliases"]
    with pytest.raises(DirectoryError) as raised:
        Directory.from_records(records)
    assert any("population" in p for p in raised.value.problems)
    assert any("aliases" in p for p in raised.value.problems)


def test_duplicate_ids_are_reported(records):
    records["mediators"].append(dict(records["mediators"][0]))
    with pytest.raises(DirectoryError, match="duplicate"):
        Directory.from_records(records)


def test_a_dispute_type_cannot_have_two_lead_units(records):
    records["units"][1]["dispute_types"] = ["医疗纠纷", "劳动争议"]
    with pytest.raises(DirectoryError, match="劳动争议"):
        Directory.from_records(records)


def test_places_snapshot_is_json_and_follows_changes(directory, records):
    snapshot = directory.places_snapshot()
    assert json.loads(json.dumps(snapshot, ensure_ascii=False)) == snapshot
    assert len(snapshot["townships"]) == 18 and len(snapshot["villages"]) == 1024
    assert len(snapshot["grids"]) == 1229 and len(snapshot["work_areas"]) == 161
    bianzhuang = next(t for t in snapshot["townships"] if t["code"] == "371324-001")
    assert "卞庄" in bianzhuang["aliases"]
    records["villages"][0]["name"] = "改名村"
    assert Directory.from_records(records).places_snapshot()["digest"] != snapshot["digest"]


def test_distance():
    assert distance_km((34.0, 118.0), (35.0, 118.0)) == pytest.approx(111.2, abs=0.1)
    assert distance_km((34.8, 118.0), (34.8, 118.0)) == 0
