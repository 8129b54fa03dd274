"""Builders for hand-made counsellors and pools; the clock is fixed at a Wednesday morning.

Townships used by the tests: 371324-003 兰陵镇 (the case), 371324-010 金岭镇 (about 14 km
away), 371324-018 下村乡 (about 31 km away).
"""
from __future__ import annotations

import copy
from datetime import datetime

import pytest

from services.common.clock import LOCAL_TZ
from services.psych.match import Pool, load_reference

LANLING_TOWN = "371324-003"


def build_record(counsellor_id: str, **overrides) -> dict:
    """A counsellor available Wednesday 09:00-12:00 in 兰陵镇; override any field."""
    base = {
        "id": counsellor_id, "name": "测试员", "gender": "female", "birth_year": 1980,
        "occupation": "社工", "specialities": ["情绪疏导"], "certification": "国家三级心理咨询师",
        "township_code": LANLING_TOWN, "phone": "10000000000", "weekly_capacity": 3,
        "availability": {"slots": [{"day": "wed", "start": "09:00", "end": "12:00"}],
                         "urgent_callout": False, "callout_response_minutes": None, "away_until": None},
        "recusal": {"villages": [], "persons": []},
        "active": True,
    }
    for key, value in overrides.items():
        if key in base["availability"]:
            base["availability"][key] = value
        elif key in ("villages", "persons"):
            base["recusal"][key] = value
        else:
            base[key] = value
    return copy.deepcopy(base)


@pytest.fixture
def now():
    return datetime(2025, 6, 4, 10, 0, tzinfo=LOCAL_TZ)  # a Wednesday


@pytest.fixture
def record():
    return build_record


@pytest.fixture(scope="session")
def townships():
    return load_reference()[0]


@pytest.fixture
def make_pool(townships):
    def build(*records):
        return Pool(townships, records)
    return build


@pytest.fixture(scope="session")
def reference_pool():
    return Pool.from_reference()
