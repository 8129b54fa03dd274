"""Hand-made counsellor records, for the unit tests and the integration tests of psych."""
from __future__ import annotations

import copy

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
