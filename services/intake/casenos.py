"""Case numbers: 371324-YYYYMMDD-NNNNNN, the day of acceptance in Asia/Shanghai and a
per-day sequence incremented atomically in intake's database (one statement, no race)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite

from services.common.clock import local
from services.intake.models import CaseSequence

DIVISION = "371324"


def format_case_no(day: str, number: int) -> str:
    return f"{DIVISION}-{day}-{number:06d}"


def next_case_no(session, accepted_at: datetime) -> str:
    day = local(accepted_at).strftime("%Y%m%d")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(CaseSequence)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": CaseSequence.last + 1})
        .returning(CaseSequence.last)
    )
    return format_case_no(day, session.execute(stmt).scalar_one())
