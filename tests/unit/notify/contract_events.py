"""Every event notify consumes, as its producer emits it (the contract payloads of
services/contracts/{intake,mediation,psych,routing}.py), for unit, integration and e2e tests.

Names and numbers are invented. Each person has their own phone, so a test can tell who got what.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.contracts.envelope import new_event

TOWNSHIP = "371324-001"          # 卞庄街道
TOWNSHIP_NAME = "卞庄街道"
VILLAGE = "371324-001-023"
VILLAGE_NAME = "东关社区"

COMPLAINANT = {"role": "complainant", "name": "王秀英", "phone": "13812345678", "user_id": "lsf-88123",
               "id_number": "371324199001011234"}
NEW_COMPLAINANT = {"role": "complainant", "name": "李建华", "phone": "13698765432"}
MEDIATOR = {"id": "MT-001-1", "name": "张建国", "role": "mediator", "level": "township", "township": TOWNSHIP,
            "phone": "13705390001"}
MEDIATOR_2 = {"id": "MT-001-2", "name": "刘芳", "role": "mediator", "level": "township", "township": TOWNSHIP,
              "phone": "13705390002", "email": "liufang@lanling.gov.cn"}
SUPERVISOR = {"id": "SUP-001", "name": "赵立新", "role": "township_head", "township": TOWNSHIP,
              "phone": "13705391003", "email": "zhaolx@lanling.gov.cn"}
UNIT = {"id": "U-LABOUR-ARBITRATION", "name": "县劳动人事争议仲裁院", "role": "unit", "email": "ldzc@lanling.gov.cn"}
COUNTY_SUPERVISOR = {"id": "SUP-COUNTY-1", "name": "吴磊", "role": "county_supervisor", "township": None,
                     "phone": "13705393001", "email": "wulei@lanling.gov.cn"}
# The directory's staff, from which notify seeds its default duty roster.
STAFF = [SUPERVISOR, COUNTY_SUPERVISOR]
COUNSELLOR = {"id": "PC-042", "name": "孙慧", "role": "counsellor", "phone": "15106390042"}
COORDINATOR = {"id": "PC-COORD", "name": "周敏", "role": "psych_coordinator", "phone": "15106390001",
               "email": "zhoumin@lanling.gov.cn"}

PHONES = [COMPLAINANT["phone"], NEW_COMPLAINANT["phone"], MEDIATOR["phone"], MEDIATOR_2["phone"],
          SUPERVISOR["phone"], COUNSELLOR["phone"], COORDINATOR["phone"], COUNTY_SUPERVISOR["phone"]]


def payloads(case_no: str, now: datetime | None = None) -> dict[str, dict]:
    """One payload per event type notify consumes (all but directory_updated), in the order of a case's life."""
    now = now or datetime.now(timezone.utc)
    sign_off, handling = now + timedelta(hours=4), now + timedelta(days=15)
    return {
        "case_received": {
            "case_no": case_no, "accepted_at": now, "content": "工地拖欠工资三万元,包工头不接电话。",
            "township": TOWNSHIP, "village": VILLAGE, "urgent": False,
            "source": {"channel": "hotline", "reference": f"12345-{case_no}", "received_at": now,
                       "complainant": COMPLAINANT, "obligations": []},
        },
        "case_merged": {
            "case_no": case_no, "score": 0.93, "matched": {"township": TOWNSHIP}, "reasons": ["同一工地"],
            "source": {"channel": "app", "reference": f"app-{case_no}", "received_at": now,
                       "complainant": NEW_COMPLAINANT},
        },
        "case_assigned": {
            "case_no": case_no, "level": "township", "mechanism": "supermarket", "township": TOWNSHIP,
            "dispute_type": "劳动争议", "assignees": [MEDIATOR, MEDIATOR_2], "sign_off_deadline": sign_off,
            "handling_deadline": handling, "complainant": COMPLAINANT,
        },
        "case_accepted": {"case_no": case_no, "accepted_by": MEDIATOR, "handling_deadline": handling,
                          "complainant": COMPLAINANT},
        "reminder_due": {"case_no": case_no, "deadline_kind": "handling", "deadline": handling, "stage": "before",
                         "assignees": [MEDIATOR]},
        "case_overdue": {"case_no": case_no, "grade": "overdue", "deadline": handling, "assignees": [MEDIATOR]},
        "supervision_opened": {"case_no": case_no, "supervisor": SUPERVISOR, "reason": "超期未办结,群众多次反映",
                               "unit": UNIT},
        "accountability_recorded": {"case_no": case_no, "against": MEDIATOR, "grade": "talk",
                                    "reason": "超期未办结且未说明原因", "supervisors": [SUPERVISOR]},
        "case_resolved": {"case_no": case_no, "outcome": "resolved", "summary": "双方达成协议,分两期支付。",
                          "resolved_at": now, "mediator": MEDIATOR, "complainant": COMPLAINANT,
                          "rating_token": "Xk29aP7q"},
        "evaluation_requested": {"case_no": case_no, "rating_token": "Xk29aP7q",
                                 "rating_url": "https://ll.gov.cn/r/Xk29aP7q", "complainant": COMPLAINANT},
        "extension_requested": {"case_no": case_no, "requested_by": MEDIATOR, "reason": "当事人外出务工,需等其返乡",
                                "handling_deadline": handling, "extension": "7个工作日",
                                "approver_role": "township_head", "supervisors": [SUPERVISOR]},
        "extension_decided": {"case_no": case_no, "approved": True, "decided_by": SUPERVISOR,
                              "handling_deadline": handling, "deadline": handling + timedelta(days=9),
                              "assignees": [MEDIATOR]},
        "case_evaluated": {"case_no": case_no, "rating": "满意", "comment": "调解员很耐心", "assignees": [MEDIATOR]},
        "case_closed": {"case_no": case_no, "outcome": "resolved", "closed_at": now, "complainant": COMPLAINANT},
        "counsellor_offered": {"case_no": case_no, "offer_id": f"offer-{case_no}", "counsellor": COUNSELLOR,
                               "urgent": False, "expires_at": now + timedelta(hours=2), "score": 0.8,
                               "reasons": ["同在卞庄街道"]},
        "counsellor_assigned": {"case_no": case_no, "offer_id": f"offer-{case_no}", "counsellor": COUNSELLOR,
                                "mediators": [MEDIATOR]},
        "psych_unmatched": {"case_no": case_no, "reason": "本乡镇暂无擅长青少年心理的咨询师", "urgent": False},
        "case_urgent": {"case_no": case_no, "township": TOWNSHIP, "signals": ["suicide_threat: 喝药"],
                        "summary": "来电人称再不解决就喝药", "complainant": COMPLAINANT, "detected_at": now},
    }


def directory_snapshot(version: int = 1) -> dict:
    return {"version": version, "changed": ["test"], "places": {
        "townships": [{"code": TOWNSHIP, "name": TOWNSHIP_NAME, "kind": "街道", "aliases": []},
                      {"code": "371324-003", "name": "兰陵镇", "kind": "镇", "aliases": []}],
        "villages": [{"code": VILLAGE, "name": VILLAGE_NAME, "kind": "社区", "township": TOWNSHIP}],
        "grids": [], "work_areas": [],
    }}


# The expected audiences and channels of each event for the payloads above, with the default
# roster seeded from STAFF (SUPERVISOR for the township, COUNTY_SUPERVISOR for the county, no
# psych coordinator), written out independently of rules.yaml.
def expected(event_type: str) -> set[tuple[str, str, str]]:
    """(audience, recipient id or 'citizen', channel) for each delivery."""
    mediators = {("mediator", MEDIATOR["id"], c) for c in ("inbox", "sms", "app_push")}
    mediator_2 = {("mediator", MEDIATOR_2["id"], c) for c in ("inbox", "sms", "app_push")}
    citizen_both = {("citizen", "citizen", "sms"), ("citizen", "citizen", "app_push")}
    return {
        "case_received": citizen_both,
        "case_merged": {("citizen", "citizen", "sms")},
        "case_assigned": mediators | mediator_2,
        "case_accepted": citizen_both,
        "reminder_due": mediators,
        "case_overdue": mediators | {("supervisor", SUPERVISOR["id"], c) for c in ("inbox", "email")},
        "supervision_opened": {("unit", UNIT["id"], c) for c in ("inbox", "email")}
                              | {("supervisor", SUPERVISOR["id"], c) for c in ("inbox", "email")},
        "accountability_recorded": {("unit", MEDIATOR["id"], "inbox")}
                                   | {("supervisor", SUPERVISOR["id"], c) for c in ("inbox", "email")},
        "case_resolved": citizen_both,
        "evaluation_requested": citizen_both,
        "case_evaluated": {("mediator", MEDIATOR["id"], "inbox")},
        "extension_requested": {("supervisor", SUPERVISOR["id"], c) for c in ("inbox", "email")},
        "extension_decided": {("mediator", MEDIATOR["id"], c) for c in ("inbox", "app_push")},
        "case_closed": citizen_both,
        "counsellor_offered": {("counsellor", COUNSELLOR["id"], c) for c in ("inbox", "sms", "app_push")},
        "counsellor_assigned": {("mediator", MEDIATOR["id"], c) for c in ("inbox", "app_push")},
        "psych_unmatched": {("psych_coordinator", COUNTY_SUPERVISOR["id"], c) for c in ("inbox", "email", "sms")},
        "case_urgent": {("township_on_duty", SUPERVISOR["id"], c) for c in ("inbox", "sms", "app_push")}
                       | {("county_on_duty", COUNTY_SUPERVISOR["id"], c) for c in ("inbox", "sms", "app_push")},
    }[event_type]


def wire(event_type: str, data: dict, case_no: str | None, at: datetime | None = None):
    """(Event, body) as the producer's outbox would publish it."""
    return new_event(event_type, data, correlation_id=case_no, occurred_at=at or datetime.now(timezone.utc))
