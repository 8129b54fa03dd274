"""Realistic events of every kind notify consumes, and the people they reach (names invented)."""
from __future__ import annotations

import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.notify.rules import StaticDirectory

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 9, 15, tzinfo=SHANGHAI)
CASE_NO = "371324-20261201-000123"
RATING_URL = "https://ll.gov.cn/r/Xk29aP7q"

COMPLAINANT = {"name": "王小明", "phone": "13912345678", "app_user_id": "lsf-88123"}
NEW_COMPLAINANT = {"name": "李秀英", "phone": "+86 136-9876-5432"}
MEDIATOR = {"id": "M-0107", "name": "张建国", "role": "mediator", "phone": "13705390001",
            "email": "zhangjg@lanling.gov.cn", "app_user_id": "pa-0107"}
MEDIATOR_2 = {"id": "M-0112", "name": "刘芳", "role": "mediator", "phone": "13705390002"}
SUPERVISOR = {"id": "S-0003", "name": "赵立新", "role": "supervisor", "phone": "13705391003",
              "email": "zhaolx@lanling.gov.cn"}
UNIT = {"id": "U-LDZC", "name": "县劳动人事争议仲裁院", "role": "unit", "email": "ldzc@lanling.gov.cn"}
COUNSELLOR = {"id": "P-0042", "name": "孙慧", "role": "counsellor", "phone": "15106390042",
              "app_user_id": "pa-p0042"}
COORDINATOR = {"id": "P-COORD", "name": "周敏", "role": "psych_coordinator", "phone": "15106390001",
               "email": "zhoumin@lanling.gov.cn"}
TOWNSHIP_DUTY = {"id": "D-BZ-01", "name": "陈刚", "role": "on_duty", "phone": "13705392001", "app_user_id": "pa-d01"}
COUNTY_DUTY = {"id": "D-XIAN-01", "name": "吴磊", "role": "on_duty", "phone": "13705393001", "app_user_id": "pa-d02"}

OTHER_PARTY_PHONE = "13800001111"
ID_NUMBER = "371324199001011234"
SUMMARY = (f"王小明反映在卞庄街道某工地务工被拖欠工资3万元,包工头李某(电话{OTHER_PARTY_PHONE},"
           f"身份证{ID_NUMBER})拒不支付")

EVERY_PHONE = [COMPLAINANT["phone"], "13698765432", MEDIATOR["phone"], MEDIATOR_2["phone"],
               SUPERVISOR["phone"], COUNSELLOR["phone"], COORDINATOR["phone"], TOWNSHIP_DUTY["phone"],
               COUNTY_DUTY["phone"], OTHER_PARTY_PHONE]

COMMON = {"case_no": CASE_NO, "township": "卞庄街道", "dispute_type": "劳动争议", "summary": SUMMARY,
          "occurred_at": "2026-12-01T01:15:00+00:00"}
DEADLINE = "2026-12-04T09:30:00+00:00"   # 2026-12-04 17:30 in Lanling


def sample_events() -> dict[str, dict]:
    events = {
        "case_received": {"complainant": COMPLAINANT},
        "case_merged": {"complainant": NEW_COMPLAINANT},
        "case_assigned": {"assignees": [MEDIATOR, MEDIATOR_2], "deadline": DEADLINE, "level": "township",
                          "mechanism": "supermarket"},
        "case_accepted": {"mediator": MEDIATOR},
        "reminder_due": {"deadline": DEADLINE, "stage": "before"},
        "case_overdue": {"deadline": DEADLINE, "grade": "seriously_overdue"},
        "supervision_opened": {"units": [UNIT], "supervisors": [SUPERVISOR], "deadline": DEADLINE,
                               "reason": "超期未办结,群众多次反映"},
        "accountability_recorded": {"units": [MEDIATOR], "measure": "约谈", "reason": "超期未办结且未说明原因"},
        "case_resolved": {"rating_url": RATING_URL},
        "evaluation_requested": {"rating_url": RATING_URL},
        "extension_requested": {"supervisors": [SUPERVISOR], "extension": "7个工作日", "reason": "当事人外出务工",
                                "deadline": DEADLINE},
        "extension_decided": {"assignees": [MEDIATOR], "approved": True, "deadline": DEADLINE},
        "case_evaluated": {"rating": 4, "comment": f"调解员很耐心,有事打我电话{COMPLAINANT['phone']}"},
        "case_closed": {"outcome": "resolved"},
        "counsellor_offered": {"counsellor": COUNSELLOR, "respond_by": "2026-12-01T04:00:00+00:00",
                               "priority": "urgent", "need": "情绪疏导"},
        "counsellor_assigned": {"counsellor": COUNSELLOR},
        "psych_unmatched": {"reason": "本乡镇暂无擅长青少年心理的咨询师", "priority": "normal", "need": "青少年心理"},
        "case_urgent": {"signal": "扬言轻生", "village": "东关村"},
    }
    return {event_type: {"event_id": f"evt-{n:04d}", **COMMON, **data}
            for n, (event_type, data) in enumerate(events.items(), start=1)}


def sample_directory() -> StaticDirectory:
    return StaticDirectory(
        complainants_by_case={CASE_NO: [COMPLAINANT]},
        assignees_by_case={CASE_NO: [MEDIATOR]},
        supervisors_by_township={"卞庄街道": [SUPERVISOR], None: [SUPERVISOR]},
        on_duty_by_township={"卞庄街道": [TOWNSHIP_DUTY], None: [COUNTY_DUTY]},
        coordinators=[COORDINATOR],
    )


@pytest.fixture(autouse=True)
def notify_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LANLING_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("LANLING_HASH_KEY", "test-hash-key")
    for name in [n for n in os.environ if n.startswith("NOTIFY_")] + ["TZ_NAME"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOTIFY_CONSOLE_URL", "https://tj.lanling.gov.cn/console")


@pytest.fixture
def events():
    return sample_events()


@pytest.fixture
def directory():
    return sample_directory()
