"""Builders for hand-made counsellors and pools; the clock is fixed at a Wednesday morning.

Townships used by the tests: 371324-003 兰陵镇 (the case), 371324-010 金岭镇 (about 14 km
away), 371324-018 下村乡 (about 31 km away).
"""
from __future__ import annotations

from datetime import datetime

import pytest

from services.common.clock import LOCAL_TZ
from services.psych.match import Pool, load_reference
from tests.unit.psych.records import build_record


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
