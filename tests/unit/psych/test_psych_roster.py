"""Records from the API, the staff accounts, and the configuration that ties psych to the others."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from services.common import privacy
from services.common.clock import LOCAL_TZ
from services.contracts import psych as contract
from services.contracts.errors import Invalid
from services.psych import handlers, match, offers, roster, sessions

NOW = datetime(2026, 6, 3, 10, 0, tzinfo=LOCAL_TZ)


def test_the_api_vocabularies_are_the_domain_ones():
    assert contract.CONSENT_STATES == offers.CONSENT_STATES
    assert contract.SESSION_KINDS == sessions.SESSION_KINDS
    assert contract.OUTCOMES == tuple(sessions.OUTCOMES)
    assert contract.GENDERS == tuple(match.GENDERS)


def test_a_new_record_is_normalised(record):
    body = {k: v for k, v in record("PC-0301").items() if k != "township_code"}
    body.update(township="兰陵", phone="+86 139 0000 0001",
                recusal={"villages": ["371324-003-001"], "persons": [{"phone": "13812345678"},
                                                                     {"id_number": "370000199001011234"}]})
    stored = roster.normalise(body, None, now=NOW)
    assert stored["township_code"] == "371324-003" and stored["phone"] == "13900000001"
    assert stored["recusal"]["persons"] == sorted([privacy.keyed_hash("13812345678", "phone"),
                                                   privacy.keyed_hash("370000199001011234", "id")])
    assert "township" not in stored and match.Counsellor.from_record(stored).id == "PC-0301"


def test_changes_merge_into_the_record_and_an_identical_update_is_no_change(record):
    current = roster.normalise(record("PC-0302", phone="13900000002"), None, now=NOW)
    changed = roster.normalise({"availability": {"away_until": "2026-07-01T00:00:00+08:00"}}, current, now=NOW)
    assert changed["availability"]["slots"] == current["availability"]["slots"]
    assert changed["availability"]["away_until"] == "2026-07-01T00:00:00+08:00"
    assert roster.normalise({"name": current["name"]}, current, now=NOW) == current


@pytest.mark.parametrize("changes, field", [
    ({"id": "PC-9999"}, "id"),
    ({"birth_year": 2015}, "birth_year"),
    ({"weekly_capacity": 500}, "weekly_capacity"),
    ({"phone": "12345"}, "phone"),
    ({"recusal": {"persons": ["王五"]}}, "recusal.persons"),
    ({"nickname": "小王"}, "nickname"),
    ({"name": "  "}, "name"),
    ({"township": "火星镇"}, "township_code"),
])
def test_bad_changes_name_the_field(record, changes, field):
    current = roster.normalise(record("PC-0303", phone="13900000003"), None, now=NOW)
    with pytest.raises(Invalid) as raised:
        roster.normalise(changes, current, now=NOW)
    assert field in raised.value.fields


def test_every_sample_counsellor_and_the_coordinator_get_an_account():
    accounts = handlers.staff_accounts()
    counsellors = [a for a in accounts if a["role"] == "counsellor"]
    assert len(counsellors) == 248 and all(a["username"] == a["directory_id"].lower() for a in counsellors)
    assert [a["directory_id"] for a in accounts if a["role"] == "psych_coordinator"] == \
        [c["id"] for c in handlers.coordinators()]
    assert len({a["username"] for a in accounts}) == len(accounts)


def test_the_coordinator_has_contacts_for_psych_unmatched():
    coordinator = handlers.coordinators()[0]
    assert coordinator["role"] == "psych_coordinator" and coordinator["phone"] and coordinator["email"]


def test_urgent_signals_that_call_a_counsellor_are_intake_categories_mapped_to_known_risks():
    intake = yaml.safe_load((Path(handlers.__file__).parents[1] / "intake" / "rules" / "urgent.yaml").read_text())
    wanted = handlers.triggers()["case_urgent"]
    assert set(wanted) <= set(intake["categories"])
    known = set(match.default_rules().risk_signals)
    assert all(set(risks) <= known for risks in wanted.values())
    assert set(handlers.triggers()["emergency_signals"]) <= known
    assert roster.township_code(handlers.triggers()["default_township"]) is not None


def test_the_week_for_load_starts_on_monday_in_county_time():
    monday_early = datetime(2026, 6, 7, 16, 30, tzinfo=timezone.utc)  # Monday 00:30 in Lanling
    assert roster.week_start(monday_early) == datetime(2026, 6, 8, 0, 0, tzinfo=LOCAL_TZ)
    assert roster.week_start(NOW) == datetime(2026, 6, 1, 0, 0, tzinfo=LOCAL_TZ)
