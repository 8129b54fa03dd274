"""Pool statistics for the county's "人才储备库" view of its counsellors.

Counts by age band, gender, occupation, speciality (a counsellor with several
specialities counts once in each), certification and home township, plus active and
inactive totals and weekly capacity. Breakdowns cover the whole reserve by default;
`active_only=True` restricts them to counsellors who can be matched today.
"""
from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Iterable, Mapping

from services.psych.match import Counsellor, Township

AGE_BANDS = (  # label, lowest age, first age of the next band
    ("<30", None, 30),
    ("30-39", 30, 40),
    ("40-49", 40, 50),
    ("50-59", 50, 60),
    (">=60", 60, None),
)


def age_band(age: int) -> str:
    for label, low, high in AGE_BANDS:
        if (low is None or age >= low) and (high is None or age < high):
            return label
    raise AssertionError("AGE_BANDS must cover every age")


def _by_count(counter: Counter) -> dict[str, int]:
    """Largest first, then by name, so the view reads as a ranking."""
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def pool_stats(counsellors: Iterable[Counsellor], *, as_of: date, townships: Mapping[str, Township],
               load: Mapping[str, int] | None = None, active_only: bool = False) -> dict:
    """JSON-ready statistics; `load` (cases held this week per counsellor) adds remaining capacity."""
    everyone = list(counsellors)
    active = [c for c in everyone if c.active]
    counted = active if active_only else everyone
    load = load or {}
    township_counts = Counter(c.township_code for c in counted)
    active_by_township = Counter(c.township_code for c in active)
    held = sum(min(load.get(c.id, 0), c.weekly_capacity) for c in active)
    capacity = sum(c.weekly_capacity for c in active)
    return {
        "as_of": as_of.isoformat(),
        "scope": "active" if active_only else "all",
        "total": len(everyone),
        "active": len(active),
        "inactive": len(everyone) - len(active),
        "by_age_band": {label: sum(age_band(c.age_in(as_of.year)) == label for c in counted)
                        for label, _, _ in AGE_BANDS},
        "by_gender": _by_count(Counter(c.gender for c in counted)),
        "by_occupation": _by_count(Counter(c.occupation for c in counted)),
        "by_speciality": _by_count(Counter(s for c in counted for s in c.specialities)),
        "by_certification": _by_count(Counter(c.certification for c in counted)),
        "by_township": [
            {"code": code, "name": township.name, "count": township_counts[code], "active": active_by_township[code]}
            for code, township in sorted(townships.items())
        ],
        "capacity": {
            "weekly_active": capacity,
            "weekly_all": sum(c.weekly_capacity for c in everyone),
            "held_this_week": held,
            "remaining_this_week": capacity - held,
            "urgent_callout_active": sum(c.urgent_callout for c in active),
        },
    }
