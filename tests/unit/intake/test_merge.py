"""并单: quality on the labelled fixture, blocking keys, and the rules of best_match."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.common import privacy
from services.contracts.channels import load_submission
from services.intake import evaluate_merge, merge
from services.intake.canonical import StaticPlaces, to_canonical
from services.intake.merge import MergeConfig, MergeProfile, best_match, make_profile, merge_keys, profile_from_case

OPENED = datetime(2024, 3, 10, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture(autouse=True)
def hash_key(monkeypatch):
    monkeypatch.setenv("LANLING_HASH_KEY", "unit-test-key")


@pytest.fixture(scope="module")
def pairs():
    return evaluate_merge.load_pairs()


def hotline(case_no="C-1", text="来电人称邻居李某在两家交界处砌院墙，占用其家宅基地约半米，多次协商未果。", **kwargs):
    values = dict(township="大仲村镇", village="后楼村", village_name="后楼村", name="王秀英", phone="13800001001")
    values.update(kwargs)
    return make_profile(case_no, "hotline", text, values.pop("opened_at", OPENED), **values)


class TestFixture:
    def test_has_at_least_200_labelled_pairs_of_both_kinds(self, pairs):
        assert len(pairs) >= 200
        assert sum(p["same"] for p in pairs) >= 100
        assert sum(not p["same"] for p in pairs) >= 100
        assert all(p["note"] and p["a"]["text"] and p["b"]["text"] for p in pairs)

    def test_covers_every_channel(self, pairs):
        channels = {side["channel"] for p in pairs for side in (p["a"], p["b"])}
        assert channels == {"hotline", "petition", "opinion", "app", "grid", "walkin"}

    def test_uses_only_fake_phone_numbers(self, pairs):
        fake = re.compile(r"13[789]0000\d{4}|0539510\d{4}")
        for p in pairs:
            for side in (p["a"], p["b"]):
                phones = [side.get("phone")] + [party.get("phone") for party in side.get("parties") or ()]
                for phone in filter(None, phones):
                    assert fake.fullmatch(privacy.normalise_phone(phone)), phone


def test_merge_quality_floor(pairs):
    result = evaluate_merge.evaluate(pairs)
    assert result["precision"] >= 0.95, result["errors"]
    assert result["recall"] >= 0.80, result["errors"]


def test_blocking_finds_nearly_every_repeat(pairs):
    assert evaluate_merge.evaluate(pairs)["blocking_recall"] >= 0.95


class TestMergeKeys:
    def test_are_stable_across_calls_and_processes(self):
        profile = hotline()
        first = merge_keys(profile)
        merge.text_features.cache_clear()
        assert merge_keys(hotline()) == first

    def test_the_same_person_gives_the_same_person_key_however_the_phone_is_written(self):
        plain = {k for k in merge_keys(hotline(phone="13800001001")) if k.startswith("p:")}
        formatted = {k for k in merge_keys(hotline(phone="+86 138-0000-1001")) if k.startswith("p:")}
        assert plain and plain == formatted

    def test_are_few_and_carry_no_personal_data(self):
        keys = merge_keys(hotline(text="我叫王秀英，电话13800001001，邻居砌墙占了我家宅基地。"))
        assert 5 <= len(keys) <= 40
        assert not any("13800001001" in key or "王秀英" in key for key in keys)

    def test_a_repeat_in_other_words_shares_a_key(self):
        petition = make_profile(
            "C-2", "petition",
            "我是后楼村村民。去年冬天邻居李某翻盖房子时把院墙往我家这边挪了半米多，占了我家的宅基地。",
            OPENED + timedelta(days=3), township="大仲村镇", village="后楼村", village_name="后楼村",
        )
        assert merge_keys(hotline()) & merge_keys(petition)

    def test_unrelated_cases_in_other_townships_share_none(self):
        other = make_profile("C-9", "hotline", "来电人反映向城镇物流园工地包工头拖欠工资两万余元。", OPENED,
                             township="向城镇", name="钱进", phone="13800001108")
        assert not merge_keys(hotline()) & merge_keys(other)


class TestBestMatch:
    def test_merges_the_same_person_reporting_again_in_other_words(self):
        again = hotline("C-2", "王秀英反映邻居李某翻盖房子时把院墙往她家挪了半米多，占了宅基地，请求处理。",
                        opened_at=OPENED + timedelta(days=5), phone="138 0000 1001")
        match = best_match(again, [hotline()])
        assert match is not None and match.case_no == "C-1"
        assert match.matched["phone"] == "138****1001"
        assert "same phone 138****1001" in match.reasons
        assert not any("13800001001" in reason or "王秀英" in reason for reason in match.reasons)

    def test_does_not_merge_another_dispute_of_the_same_person(self):
        wages = hotline("C-2", "来电人王秀英反映其丈夫在外地建筑工地打工被拖欠工资三万元，包工头联系不上。",
                        opened_at=OPENED + timedelta(days=2))
        assert best_match(wages, [hotline()]) is None

    def test_does_not_merge_another_dispute_in_the_same_village(self):
        lights = hotline("C-2", "来电人反映后楼村主街的路灯大部分不亮，晚上出行不安全，要求维修。",
                         opened_at=OPENED + timedelta(days=2), name="李国庆", phone="13800001101")
        assert best_match(lights, [hotline()]) is None

    def test_never_merges_across_townships(self):
        copy = hotline("C-2", opened_at=OPENED + timedelta(days=1), township="向城镇", village=None, village_name=None)
        match = merge.score(copy, hotline())
        assert match.score < 0.5 and "different townships" in match.reasons

    @pytest.mark.parametrize(
        "change",
        [
            {"status": "closed"},
            {"status": "resolved"},
            {"status": "resolved_on_site"},
            {"opened_at": OPENED - timedelta(days=31)},
            {"case_no": "C-NEW"},
        ],
    )
    def test_only_other_open_cases_inside_the_window_are_candidates(self, change):
        new = hotline("C-NEW", opened_at=OPENED + timedelta(days=1))
        assert best_match(new, [replace(hotline(), **change)]) is None

    def test_the_window_is_configurable(self):
        new = hotline("C-NEW", opened_at=OPENED + timedelta(days=40))
        assert best_match(new, [hotline()]) is None
        assert best_match(new, [hotline()], MergeConfig(window_days=60)) is not None

    def test_the_threshold_is_configurable(self):
        new = hotline("C-NEW", opened_at=OPENED + timedelta(days=1))
        assert best_match(new, [hotline()]) is not None
        assert best_match(new, [hotline()], MergeConfig(threshold=1.01)) is None

    def test_picks_the_best_of_several_and_the_older_on_a_tie(self):
        unrelated = hotline("C-0", "来电人反映后楼村主街的路灯大部分不亮。", name="李国庆", phone="13800001101")
        older = hotline("C-OLD", opened_at=OPENED - timedelta(days=3))
        new = hotline("C-NEW", opened_at=OPENED + timedelta(days=1))
        assert best_match(new, [unrelated, hotline(), older]).case_no == "C-OLD"

    def test_nothing_to_compare(self):
        assert best_match(hotline(), []) is None


def test_profiles_round_trip_through_json():
    profile = make_profile("C-3", "grid", "网格员上报：村民王某某与李某某因宅基地界墙发生纠纷。", OPENED,
                           township="大仲村镇", village="V-HL", grid="DZ-HL-01",
                           parties=[{"role": "applicant", "name": "王秀英", "phone": "13800001001"}])
    row = json.loads(json.dumps(profile.to_row(), ensure_ascii=False))
    assert MergeProfile.from_row(row) == profile
    assert "13800001001" not in json.dumps(row) and "王秀英" not in json.dumps(row)


def test_canonical_cases_from_two_channels_merge():
    places = StaticPlaces(
        townships=[{"code": "T-DZ", "name": "大仲村镇"}],
        villages=[{"code": "V-HL", "name": "后楼村", "township": "T-DZ"}],
        grids=[{"code": "DZ-HL-01", "village": "V-HL", "township": "T-DZ"}],
    )
    now = datetime(2024, 3, 20, 2, 0, tzinfo=timezone.utc)
    hotline_case = to_canonical("hotline", load_submission("hotline", {
        "order_no": "GD1", "caller_name": "王秀英", "caller_phone": "13800001001",
        "received_at": "2024-03-12T09:00:00+08:00", "township": "大仲村镇", "village": "后楼村",
        "content": "来电人称其邻居李某在两家交界处砌院墙，占用其家宅基地约半米，多次协商未果。",
    }, now), places, now)
    grid_case = to_canonical("grid", load_submission("grid", {
        "report_no": "WG1", "grid_code": "DZ-HL-01", "worker_id": "GW1", "resolved_on_site": False,
        "content": "网格员走访发现，后楼村王某某与李某某因宅基地界墙发生纠纷，新砌院墙越界约50公分，调解未果。",
        "parties": [{"role": "applicant", "name": "王秀英"}, {"role": "respondent", "name": "李长河"}],
    }, now), places, now)
    first = profile_from_case("371324-20240312-000001", hotline_case)
    second = profile_from_case("371324-20240320-000007", grid_case)
    assert first.village == second.village == "V-HL"
    match = best_match(second, [first])
    assert match is not None and match.case_no == "371324-20240312-000001"
    assert match.matched["name"] == "王**"


def test_the_benchmark_reports_milliseconds():
    figures = evaluate_merge.benchmark(sizes=(1, 3), repeats=2)
    assert set(figures) == {"merge_keys_ms", "best_match_1_warm_ms", "best_match_1_cold_ms",
                            "best_match_3_warm_ms", "best_match_3_cold_ms"}
    assert all(value >= 0 for value in figures.values())


def test_the_real_message_benchmark_is_skipped_without_the_data():
    assert evaluate_merge.gov_messages_benchmark(Path("/nonexistent/messages.csv")) is None
