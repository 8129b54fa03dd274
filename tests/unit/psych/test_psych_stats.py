"""Pool statistics against hand-counted small pools, and the sample pool's totals."""
from __future__ import annotations

from datetime import date

from services.psych.stats import age_band, pool_stats

AS_OF = date(2025, 6, 4)


def test_age_band_edges():
    assert [age_band(a) for a in (18, 29, 30, 39, 40, 49, 50, 59, 60, 80)] == \
        ["<30", "<30", "30-39", "30-39", "40-49", "40-49", "50-59", "50-59", ">=60", ">=60"]


def test_small_pool_hand_counted(make_pool, record):
    pool = make_pool(
        record("A", birth_year=1998, occupation="教师", specialities=["青少年", "亲子关系"],
               certification="国家三级心理咨询师", township_code="371324-001", weekly_capacity=2),
        record("B", birth_year=1985, occupation="教师", specialities=["青少年"],
               certification="国家二级心理咨询师", township_code="371324-001", weekly_capacity=3, gender="male"),
        record("C", birth_year=1960, occupation="退休干部", specialities=["老年", "婚姻家庭"],
               certification="国家三级心理咨询师", township_code="371324-003", weekly_capacity=1,
               urgent_callout=True, callout_response_minutes=60),
        record("D", birth_year=1975, occupation="医生", specialities=["危机干预", "青少年"],
               certification="心理治疗师", township_code="371324-018", weekly_capacity=4, active=False),
    )
    stats = pool_stats(pool.counsellors(), as_of=AS_OF, townships=pool.townships, load={"A": 1, "C": 5})
    # ages in 2025: A 27, B 40, C 65, D 50
    assert stats["by_age_band"] == {"<30": 1, "30-39": 0, "40-49": 1, "50-59": 1, ">=60": 1}
    assert (stats["total"], stats["active"], stats["inactive"]) == (4, 3, 1)
    assert stats["by_occupation"] == {"教师": 2, "医生": 1, "退休干部": 1}
    assert stats["by_speciality"] == {"青少年": 3, "亲子关系": 1, "危机干预": 1, "婚姻家庭": 1, "老年": 1}
    assert stats["by_certification"] == {"国家三级心理咨询师": 2, "国家二级心理咨询师": 1, "心理治疗师": 1}
    assert stats["by_gender"] == {"female": 3, "male": 1}
    townships = {row["code"]: row for row in stats["by_township"]}
    assert len(townships) == 18
    assert (townships["371324-001"]["name"], townships["371324-001"]["count"]) == ("卞庄街道", 2)
    assert (townships["371324-018"]["count"], townships["371324-018"]["active"]) == (1, 0)
    assert townships["371324-005"]["count"] == 0
    # capacity over active counsellors: 2 + 3 + 1; held 1 (A) + 1 (C, capped at its capacity)
    assert stats["capacity"] == {"weekly_active": 6, "weekly_all": 10, "held_this_week": 2,
                                 "remaining_this_week": 4, "urgent_callout_active": 1}


def test_active_only_scope(make_pool, record):
    pool = make_pool(record("A", occupation="教师"), record("B", occupation="医生", active=False))
    stats = pool_stats(pool.counsellors(), as_of=AS_OF, townships=pool.townships, active_only=True)
    assert stats["scope"] == "active"
    assert stats["by_occupation"] == {"教师": 1}
    assert stats["total"] == 2


def test_sample_pool_totals_are_consistent(reference_pool):
    counsellors = reference_pool.counsellors()
    stats = pool_stats(counsellors, as_of=AS_OF, townships=reference_pool.townships)
    assert stats["total"] == 248 == stats["active"] + stats["inactive"]
    assert sum(stats["by_age_band"].values()) == 248
    assert sum(stats["by_occupation"].values()) == 248
    assert sum(row["count"] for row in stats["by_township"]) == 248
    assert sum(stats["by_speciality"].values()) == sum(len(c.specialities) for c in counsellors)
    assert all(row["count"] > 0 for row in stats["by_township"])
