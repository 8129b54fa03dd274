"""A hotline case through the whole system, as the README's curl does it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOTLINE = {
    "order_no": "12345-20261129-0001",
    "caller_name": "王秀英",
    "caller_phone": "13812345678",
    "received_at": None,
    "content": "俺家东边邻居盖房子占了俺家宅基地半米，找村里调解了两回没用，请求调解。",
    "township": "兰陵镇",
}


def hotline(order_no: str, **changes) -> dict:
    body = dict(HOTLINE, order_no=order_no, **changes)
    body["received_at"] = body["received_at"] or (datetime.now(timezone.utc) - timedelta(minutes=3)).isoformat()
    return body


def test_a_hotline_case_is_assigned_with_a_mediator_a_deadline_and_two_deliveries(system):
    response = system.post("/api/v1/submissions/hotline", hotline("12345-E2E-0001"))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "received"
    case_no = answer["case_no"]
    assert case_no.startswith("371324-") and len(case_no.split("-")[2]) >= 6

    def assigned_and_notified(view):
        sent = [h for h in view["history"] if h["event"] == "notification_sent"]
        audiences = {h["detail"].get("audience") for h in sent}
        return view["status"] == "assigned" and {"citizen", "mediator"} <= audiences

    view = system.wait_case(case_no, assigned_and_notified, timeout=60, what="assigned with both deliveries")
    assert view["mediator"]["id"] and view["mediator"]["name"]
    assert view["level"] in ("grid", "village", "work_area", "township", "county")
    assert view["mechanism"] in ("supermarket", "specialised", "joint", "chain")
    deadline = datetime.fromisoformat(view["deadline"])
    assert deadline.utcoffset() == timedelta(hours=8)
    assert deadline > datetime.now(timezone.utc)
    # personal data is masked in the view
    text = str(view)
    assert "13812345678" not in text and "王秀英" not in text
    assert view["sources"][0]["complainant"]["phone"] == "138****5678"


def test_the_same_order_again_returns_the_first_answer_and_a_changed_body_conflicts(system):
    body = hotline("12345-E2E-0002")
    first = system.post("/api/v1/submissions/hotline", body)
    again = system.post("/api/v1/submissions/hotline", body)
    changed = system.post("/api/v1/submissions/hotline", dict(body, content="另一件事：村里路灯坏了。"))
    assert first.status_code == 202
    assert again.status_code == 200 and again.json() == first.json()
    assert changed.status_code == 409 and changed.json()["error"] == "conflict"


def test_health_names_every_service(system):
    response = system.get("/api/v1/health")
    assert response.status_code == 200
    assert set(response.json()["services"]) == {"intake", "routing", "mediation", "psych", "notify"}
