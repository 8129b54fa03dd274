"""Intake in the running system: a county system publishes on the AMQP ingress with its own
broker user (pika, another process), the same dispute arrives over HTTP and is merged, staff
undo the merge, and the citizen looks the case up (办理回复), with a rate limit on misses."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import requests

from services.intake import admin
from tests.harness import MANAGEMENT, ROOT

PHONE = "13700007001"
TEXT = "来电人称其邻居李某在两家交界处砌院墙，占用其家宅基地约半米，多次协商未果，要求协调处理。"


def now_iso(minutes=3) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat()


def broker_user(system, name: str) -> str:
    password = uuid.uuid4().hex
    requests.put(f"{MANAGEMENT}/api/users/{name}", json={"password": password, "tags": ""},
                 timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{system.vhost}/{name}", json=admin.broker_permissions(name),
                 timeout=10).raise_for_status()
    return f"amqp://{name}:{password}@127.0.0.1:5672/{system.vhost}"


def publish(uri: str, user: str, messages: list[dict]) -> dict:
    run = subprocess.run([sys.executable, "-m", "tests.integration.outside_system", uri], cwd=ROOT,
                         input=json.dumps({"user": user, "messages": messages, "timeout": 60}),
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(run.stdout)


def test_a_hotline_order_over_amqp_and_a_petition_over_http_become_one_case_and_can_be_split(system):
    system.lanling("sources", "add", "e2e-hotline", "--channels", "hotline")
    uri = broker_user(system, "e2e-hotline")
    try:
        order = {"order_no": "GD-E2E-1", "caller_name": "刘玉兰", "caller_phone": PHONE, "received_at": now_iso(),
                 "content": TEXT, "township": "大仲村镇", "village": "后楼村"}
        outcome = publish(uri, "e2e-hotline", [{"channel": "hotline", "message_id": "e2e-1", "body": order}])
    finally:
        requests.delete(f"{MANAGEMENT}/api/users/e2e-hotline", timeout=10)
    result = outcome["results"]["e2e-1"]
    assert result["routing_key"] == "e2e-hotline.hotline.accepted", outcome
    case_no = result["body"]["case_no"]
    system.wait_case(case_no, lambda v: v["status"] == "assigned", timeout=60, what="assigned")

    petition = {"petition_no": "XF-E2E-1", "petitioner_name": "刘玉兰", "petitioner_phone": PHONE, "form": "letter",
                "received_at": now_iso(1), "township": "大仲村镇",
                "content": "我是后楼村村民，邻居李某翻盖房子时把院墙往我家挪了半米多，占了我家宅基地，调解两次不拆。"}
    merged = system.post("/api/v1/submissions/petition", petition)
    assert merged.status_code == 202, merged.text
    assert merged.json() == {"case_no": case_no, "status": "merged", "merged_into": case_no}
    view = system.get(f"/api/v1/cases/{case_no}").json()
    assert [s["channel"] for s in view["sources"]] == ["hotline", "petition"]
    assert view["sources"][1]["merged"]["matched"]["phone"] == "137****7001"
    assert PHONE not in json.dumps(view, ensure_ascii=False)

    split = system.post(f"/api/v1/cases/{case_no}/sources/petition/XF-E2E-1/unmerge", {"reason": "另一堵墙，不是同一件事"})
    assert split.status_code == 202, split.text
    new_case = split.json()["new_case_no"]
    assert [s["channel"] for s in system.get(f"/api/v1/cases/{case_no}").json()["sources"]] == ["hotline"]
    system.wait_case(new_case, lambda v: v["status"] == "assigned", timeout=60, what="split-off case assigned")


def test_a_citizen_looks_up_their_case_with_its_number_and_phone_and_misses_are_limited(system):
    submitted = system.post("/api/v1/submissions/app", {
        "post_id": "APP-E2E-1", "user_id": "u-e2e", "phone": "13700007002", "section": "speak",
        "content": "小区门口的路灯坏了一个多月了，晚上出门很不安全。", "township": "兰陵镇"})
    assert submitted.status_code == 202, submitted.text
    case_no = submitted.json()["case_no"]
    url = system.base_url + "/api/v1/lookup"
    found = requests.post(url, json={"case_no": case_no, "phone": "137 0000 7002"}, timeout=30)
    assert found.status_code == 200, found.text
    view = found.json()
    assert view["case_no"] == case_no and view["progress"][0]["event"] == "case_received"
    assert "13700007002" not in found.text
    token = view["token"]
    assert system.get(f"/api/v1/cases/{case_no}", token=token).status_code == 200

    misses = [requests.post(url, json={"case_no": case_no, "phone": f"1370000{n:04d}"}, timeout=30)
              for n in range(5)]
    assert [m.status_code for m in misses] == [404] * 5
    assert {m.json()["message"] for m in misses} == {"no case with this number and phone"}
    limited = requests.post(url, json={"case_no": case_no, "phone": "13700007002"}, timeout=30)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.json()["error"] == "rate_limited"
