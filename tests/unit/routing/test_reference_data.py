"""The sample directory matches the Lanling model's published figures and is reproducible."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from services.routing.directory import REFERENCE_DATA, distance_km
from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES
from services.routing.reference import generate

REPO = Path(__file__).resolve().parents[3]
SHARED_TOWNSHIPS = REPO.parent / "shared" / "data" / "lanling" / "townships.csv"
ROLES = {"mediator", "grid_worker", "township_head", "county_supervisor", "receptionist", "unit_liaison"}


@pytest.fixture(scope="module")
def data() -> dict:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in REFERENCE_DATA.glob("*.json")}


def by_level(data, level):
    return [m for m in data["mediators"] if m["level"] == level]


def test_committed_files_are_what_the_generator_writes():
    rendered = generate.render(generate.build())
    assert sorted(rendered) == sorted(path.name for path in REFERENCE_DATA.glob("*.json"))
    stale = [name for name, text in rendered.items() if (REFERENCE_DATA / name).read_text(encoding="utf-8") != text]
    assert stale == [], "run: python -m services.routing.reference.generate"


def test_generator_is_deterministic_and_check_mode_agrees(tmp_path):
    assert generate.render(generate.build()) == generate.render(generate.build())
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert generate.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "villages.json").write_text("[]\n", encoding="utf-8")
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1


def test_data_is_small_and_one_record_per_line():
    total = sum(path.stat().st_size for path in REFERENCE_DATA.glob("*.json"))
    assert total < 5 * 1024 * 1024
    villages = (REFERENCE_DATA / "villages.json").read_text(encoding="utf-8").splitlines()
    assert len(villages) == 1024 + 2  # the brackets


def test_the_eighteen_real_townships_with_stable_codes(data):
    townships = data["townships"]
    assert [t["code"] for t in townships] == [f"371324-{n:03d}" for n in range(1, 19)]
    assert Counter(t["kind"] for t in townships) == {"镇": 15, "街道": 2, "乡": 1}
    for township in townships:
        assert 34.5 < township["lat"] < 35.2 and 117.7 < township["lon"] < 118.4


@pytest.mark.skipif(not SHARED_TOWNSHIPS.exists(), reason="shared Lanling data not present")
def test_township_names_match_the_public_list(data):
    with SHARED_TOWNSHIPS.open(encoding="utf-8") as handle:
        public = [(row["name"], row["kind"]) for row in csv.DictReader(handle)]
    assert [(t["name"], t["kind"]) for t in data["townships"]] == public


def test_places_add_up_to_the_model(data):
    assert len(data["work_areas"]) == 161
    assert len(data["villages"]) == 1024
    assert len(data["grids"]) == 1229
    assert len({v["name"] for v in data["villages"]}) == 1024
    township_codes = {t["code"] for t in data["townships"]}
    assert {a["township"] for a in data["work_areas"]} == township_codes
    assert {v["work_area"] for v in data["villages"]} == {a["code"] for a in data["work_areas"]}
    assert {g["village"] for g in data["grids"]} == {v["code"] for v in data["villages"]}


def test_every_village_lies_within_its_service_room_radius(data):
    areas = {a["code"]: a for a in data["work_areas"]}
    for village in data["villages"]:
        area = areas[village["work_area"]]
        assert area["township"] == village["township"]
        assert distance_km((village["lat"], village["lon"]), (area["lat"], area["lon"])) <= 2.5 + 0.01


def test_codes_nest(data):
    for village in data["villages"]:
        assert re.fullmatch(rf"{village['township']}-\d{{3}}", village["code"])
    for grid in data["grids"]:
        assert re.fullmatch(rf"{grid['village']}-\d{{2}}", grid["code"])


def test_one_grid_worker_per_grid(data):
    workers = {w["id"]: w for w in data["grid_workers"]}
    assert len(workers) == 1229
    assert sorted(g["grid_worker"] for g in data["grids"]) == sorted(workers)
    for grid in data["grids"]:
        assert workers[grid["grid_worker"]]["grid"] == grid["code"]


def test_county_centre_rooms_and_seats(data):
    rooms = data["rooms"]
    assert Counter(r["kind"] for r in rooms) == {"comprehensive": 11, "professional": 5}
    assert rooms[0]["name"] == "老苗调解工作室"
    county = by_level(data, "county")
    assert len(county) == 41
    seats = Counter(m["room"] for m in county)
    assert set(seats) == {r["code"] for r in rooms}
    assert all(2 <= n <= 3 for n in seats.values())
    for room in rooms:
        assert any(m["id"] == room["lead"] and m["room"] == room["code"] for m in county)
        members = [m for m in county if m["room"] == room["code"]]
        assert all(set(room["specialties"]) <= set(m["specialties"]) for m in members)


def test_every_township_is_guided_by_exactly_one_room_and_each_room_guides_one_or_two(data):
    guided = Counter(t for room in data["rooms"] for t in room["guides"])
    assert set(guided) == {t["code"] for t in data["townships"]}
    assert set(guided.values()) == {1}
    assert all(1 <= len(room["guides"]) <= 2 for room in data["rooms"])


def test_township_mediators(data):
    township = by_level(data, "township")
    assert len(township) == 117
    per_township = defaultdict(list)
    for mediator in township:
        per_township[mediator["township"]].append(mediator)
        assert mediator["centre"] == f"{mediator['township']}-TJ"
    assert len(per_township) == 18
    for mediators in per_township.values():
        assert len(mediators) >= 6
        assert sum(m["full_time"] for m in mediators) >= 3


def test_at_least_one_full_time_mediator_per_village(data):
    full_time = Counter(m["village"] for m in by_level(data, "village") if m["full_time"])
    assert set(full_time) == {v["code"] for v in data["villages"]}


def test_mediator_records(data):
    mediators = data["mediators"]
    villages = {v["code"] for v in data["villages"]}
    assert len({m["id"] for m in mediators}) == len(mediators)
    assert len({m["phone"] for m in mediators}) == len(mediators)
    for mediator in mediators:
        assert re.fullmatch(r"1[3-9]\d{9}", mediator["phone"])
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", mediator["name"])
        assert mediator["specialties"] and set(mediator["specialties"]) <= set(DISPUTE_TYPES)
        assert mediator["capacity"] > 0
        assert set(mediator["recusal_villages"]) <= villages
        if mediator["level"] == "village":
            assert mediator["village"] not in mediator["recusal_villages"]
        else:
            assert mediator["recusal_villages"], "county and township mediators recuse from their home village"


def test_units_cover_every_type_they_must(data):
    owners = Counter(t for unit in data["units"] for t in unit["dispute_types"])
    assert all(n == 1 for n in owners.values())
    for professional in ("医疗纠纷", "劳动争议", "交通事故", "物业纠纷", "消费纠纷", "环境污染", "城市管理", "征地拆迁"):
        assert owners[professional] == 1
    categories = {c for unit in data["units"] for c in unit["gov_categories"]}
    assert categories == set(GOV_CATEGORIES)
    names = {unit["name"] for unit in data["units"]}
    for expected in ("县医疗纠纷人民调解委员会", "县劳动人事争议仲裁院", "县公安局", "县人民法院", "县人民检察院",
                     "县信访局", "县司法局"):
        assert expected in names


def test_staff_accounts(data):
    accounts = data["accounts"]
    assert len({a["username"] for a in accounts}) == len(accounts)
    assert all(re.fullmatch(r"[a-z0-9-]+", a["username"]) for a in accounts)
    assert {a["role"] for a in accounts} == ROLES
    assert all(set(a) == {"username", "role", "directory_id", "township", "display_name"} for a in accounts)
    linked = defaultdict(set)
    for account in accounts:
        linked[account["role"]].add(account["directory_id"])
    assert linked["mediator"] == {m["id"] for m in data["mediators"]}
    assert linked["grid_worker"] == {w["id"] for w in data["grid_workers"]}
    staff = {person["id"]: person for person in data["staff"]}
    centres = {c["code"]: c for c in data["centres"]}
    assert {staff[i]["centre"] for i in linked["receptionist"]} == set(centres)
    heads = [a for a in accounts if a["role"] == "township_head"]
    assert sorted(a["township"] for a in heads) == sorted(t["code"] for t in data["townships"])
    for account in accounts:
        if account["role"] in ("township_head", "receptionist", "county_supervisor"):
            person = staff[account["directory_id"]]  # linked to their own staff record
            assert (person["role"], person["name"]) == (account["role"], account["display_name"])
            assert centres[person["centre"]]["township"] == account["township"] == person["township"]
    assert sum(a["role"] == "county_supervisor" for a in accounts) >= 2
    # a unit liaison signs for the unit: the account's directory id is the unit's code
    assert linked["unit_liaison"] == {unit["code"] for unit in data["units"]}


def test_staff_have_contacts_and_every_township_a_head(data):
    staff = data["staff"]
    assert len({p["id"] for p in staff}) == len(staff)
    assert all(re.fullmatch(r"1[3-9]\d{9}", p["phone"]) and p["email"].endswith("@lanling.example") for p in staff)
    assert len({p["phone"] for p in staff}) == len(staff)
    roles = Counter(p["role"] for p in staff)
    assert roles["township_head"] == 18 and roles["county_supervisor"] == 3
    assert roles["unit_liaison"] == len(data["units"])


def test_no_passwords_anywhere():
    for path in REFERENCE_DATA.glob("*.json"):
        assert "password" not in path.read_text(encoding="utf-8").lower()
