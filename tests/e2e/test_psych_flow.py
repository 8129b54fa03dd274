"""A citizen who talks of drinking pesticide: intake flags the emergency, routing flags the
psych need, psych offers a counsellor within seconds (before consent: the emergency is the
recorded reason), the counsellor accepts with their own login and records a session whose
notes only they and the psych coordinator can read."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

from tests.harness import wait_until

NOTES = "来电者情绪激动，已劝离农药并联系家属陪护，约定明日复访"
CONTENT = ("俺男人在外面欠了一屁股债跑了，要债的天天堵门，俺带着俩孩子实在没法活了，"
           "真是不想活了，再不给个说法俺就喝农药。")


def login(system, username: str) -> str:
    response = system.post("/api/v1/auth/login", {"username": username,
                                                   "password": os.environ["LANLING_STAFF_INITIAL_PASSWORD"]})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_a_case_in_crisis_gets_a_counsellor_within_seconds_who_accepts_and_records_a_session(system):
    submitted_at = time.monotonic()
    response = system.post("/api/v1/submissions/hotline", {
        "order_no": "12345-E2E-PSY-0001", "caller_name": "李桂兰", "caller_phone": "13912340000",
        "received_at": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(), "township": "兰陵镇",
        "content": CONTENT})
    assert response.status_code == 202, response.text
    case_no = response.json()["case_no"]
    coordinator = login(system, "psych-coord-01")

    def offered():
        view = system.get(f"/api/v1/psych/cases/{case_no}", coordinator)
        return view.json() if view.status_code == 200 and view.json()["offers"] else None

    view = wait_until(offered, 30, what="a counsellor offered")
    elapsed = time.monotonic() - submitted_at
    print(f"counsellor offered {elapsed:.2f} s after the submission")
    assert elapsed < 15  # within seconds of the submission
    assert view["urgent"] and not view["first_offer_late"]
    offer = view["offers"][0]
    assert offer["status"] == "pending" and offer["score"] > 0
    assert any(r.startswith("专长") for r in offer["reasons"]) and any(r.startswith("距离") for r in offer["reasons"])
    history = {h["action"]: h["detail"] for h in view["history"]}
    assert history["offered"]["basis"] == "emergency" and "喝农药" in history["offered"]["basis_text"]

    # routing flagged the psych need too: mediation's psych_requested joins the same request
    wait_until(lambda: "psych_requested" in system.get(f"/api/v1/psych/cases/{case_no}", coordinator)
               .json()["triggers"], 30, what="psych_requested merged")

    counsellor = login(system, offer["counsellor_id"].lower())
    accepted = system.post(f"/api/v1/psych/offers/{offer['id']}/accept", {}, counsellor)
    assert accepted.status_code == 200, accepted.text
    session = system.post(f"/api/v1/psych/cases/{case_no}/sessions", {"kind": "crisis", "notes": NOTES}, counsellor)
    assert session.status_code == 201, session.text

    view = system.get(f"/api/v1/psych/cases/{case_no}", coordinator).json()
    assert view["status"] == "assigned" and view["counsellor_id"] == offer["counsellor_id"]
    assert [s["kind"] for s in view["sessions"]] == ["crisis"] and NOTES not in str(view)
    assert system.get(f"/api/v1/psych/cases/{case_no}/sessions", coordinator).json()["items"][0]["notes"] == NOTES
    assert system.get(f"/api/v1/psych/cases/{case_no}/sessions", counsellor).json()["items"][0]["notes"] == NOTES
    assert "notes" not in system.get(f"/api/v1/psych/cases/{case_no}/sessions").json()["items"][0]  # operator key
