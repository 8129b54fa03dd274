"""Routing in the running system: a case's level, mechanism, holder and reasons reach its history;
the sample staff accounts log in with their directory ids; a roster edit is live at once."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone


PASSWORD = os.environ.get("LANLING_STAFF_INITIAL_PASSWORD", "test-initial-password")


def login(system, username: str) -> dict:
    response = system.post("/api/v1/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_professional_case_is_routed_to_its_unit_with_the_reasons_in_its_history(system):
    body = {"order_no": "12345-E2E-R001", "caller_name": "李建国", "caller_phone": "13812340001",
            "received_at": (datetime.now(timezone.utc) - timedelta(minutes=2)).isoformat(), "township": "南桥镇",
            "content": "我父亲在县人民医院做胆囊手术, 术后大出血去世, 医院说是并发症, 我们认为是医疗事故, 要求医院赔偿。"}
    response = system.post("/api/v1/submissions/hotline", body)
    assert response.status_code == 202, response.text
    case_no = response.json()["case_no"]
    view = system.wait_case(case_no, lambda v: v["status"] == "assigned", timeout=60, what="assigned")
    assert (view["level"], view["mechanism"]) == ("county", "specialised")
    assert view["unit"]["id"] == "U-MEDICAL-COMMITTEE"
    routed = [entry for entry in view["history"] if entry["event"] == "case_routed"]
    assert routed and any("归口" in reason for reason in routed[0]["detail"]["reasons"])

    explained = system.get(f"/api/v1/cases/{case_no}/routing").json()
    assert explained["dispute_type"] == "医疗纠纷" and explained["attempts"][0]["reasons"]
    assert explained["attempts"][0]["unit"] == "U-MEDICAL-COMMITTEE"


def test_staff_log_in_with_their_directory_ids_and_a_roster_edit_is_live(system):
    head = login(system, "head-009")
    assert head["role"] == "township_head"
    staff = system.get("/api/v1/staff", head["token"], params={"township": "南桥镇"}).json()
    assert {"TH-009"} <= {person["id"] for person in staff}
    grids = system.get("/api/v1/reference/grids", params={"township": "南桥镇"}).json()
    grid = grids[0]
    created = system.post("/api/v1/grid-workers", {"grid": grid["code"], "name": "孙立新", "phone": "13900009999"},
                          head["token"])
    assert created.status_code == 201, created.text
    worker = created.json()["key"]
    assert [a["account"] for a in created.json()["accounts"]] == ["created", "updated"]

    current = {g["code"]: g for g in system.get("/api/v1/reference/grids", params={"township": "南桥镇"}).json()}
    assert current[grid["code"]]["grid_worker"] == worker  # live at once: the edit committed before the answer
    assert login(system, worker.lower())["role"] == "grid_worker"
    old = system.post("/api/v1/auth/login", {"username": grid["grid_worker"].lower(), "password": PASSWORD})
    assert old.status_code == 401  # the replaced grid worker's account is deactivated
