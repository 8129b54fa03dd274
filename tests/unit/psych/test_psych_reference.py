"""The sample counsellor file: its counts, its vocabulary, and agreement with its generator."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from services.psych.match import REFERENCE_PATH, Pool, default_rules, load_reference
from services.psych.reference import generate

REPO = Path(__file__).resolve().parents[3]
SHARED_TOWNSHIPS = REPO / ".." / "shared" / "data" / "lanling" / "townships.csv"
DIRECTORY = REPO / "services" / "routing" / "reference" / "data"


@pytest.fixture(scope="module")
def document():
    return json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))


def test_the_file_is_what_the_generator_produces():
    assert REFERENCE_PATH.read_text(encoding="utf-8") == generate.render(generate.generate())


def test_it_is_labelled_sample_data(document):
    assert document["about"].startswith("SAMPLE DATA")


def test_248_unique_counsellors(document):
    counsellors = document["counsellors"]
    assert len(counsellors) == 248
    assert len({c["id"] for c in counsellors}) == 248


def test_all_18_townships_with_project_codes_and_all_present(document):
    codes = [t["code"] for t in document["townships"]]
    assert codes == [f"371324-{n:03d}" for n in range(1, 19)]
    assert set(Counter(c["township_code"] for c in document["counsellors"])) == set(codes)


def test_township_names_follow_the_shared_list(document):
    if not SHARED_TOWNSHIPS.exists():
        pytest.skip("shared Lanling data not present")
    with SHARED_TOWNSHIPS.open(encoding="utf-8") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    assert [t["name"] for t in document["townships"]] == names


def test_every_record_loads_into_a_pool():
    townships, records = load_reference()
    assert len(Pool(townships, records)) == 248


def test_plausible_people(document):
    counsellors = document["counsellors"]
    ages = [document["reference_year"] - c["birth_year"] for c in counsellors]
    assert min(ages) >= 25 and max(ages) <= 70
    assert max(ages) - min(ages) >= 35
    assert all(c["phone"].startswith("100") and len(c["phone"]) == 11 for c in counsellors)
    assert set(Counter(c["gender"] for c in counsellors)) == {"female", "male"}
    assert {"教师", "医生", "护士", "社工", "退休干部", "心理咨询师(专职)", "妇联干部", "律师", "乡村医生"} <= \
        {c["occupation"] for c in counsellors}
    assert any(not c["active"] for c in counsellors) and sum(c["active"] for c in counsellors) > 200
    assert any(c["availability"]["urgent_callout"] for c in counsellors)


def test_specialities_use_and_cover_the_rules_vocabulary(document):
    used = Counter(s for c in document["counsellors"] for s in c["specialities"])
    assert set(used) == set(default_rules().specialities)
    assert set(generate.SPECIALITIES) == set(default_rules().specialities)


def test_townships_and_recusal_villages_agree_with_the_routing_directory(document):
    if not (DIRECTORY / "townships.json").exists():
        pytest.skip("routing's sample directory not present")
    directory = json.loads((DIRECTORY / "townships.json").read_text(encoding="utf-8"))
    assert [(t["code"], t["name"], t["lat"], t["lon"]) for t in directory] == \
        [(t["code"], t["name"], t["lat"], t["lon"]) for t in document["townships"]]
    villages = {v["code"] for v in json.loads((DIRECTORY / "villages.json").read_text(encoding="utf-8"))}
    recused = {v for c in document["counsellors"] for v in c["recusal"]["villages"]}
    assert recused and recused <= villages
