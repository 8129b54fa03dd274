"""The closed loop end to end through the gateway, with staff tokens and the citizen's rating token:
submit, assign, accept, session, resolve, feedback, 不满意, redo, resolve, 满意, closed.

The rating link reaches the citizen through notify; here the test reads case_resolved the way another
county system would, from its own queue bound to mediation's events exchange.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from kombu import Connection, Exchange, Queue

from services.contracts.envelope import load_event
from services.routing.directory import REFERENCE_DATA
from tests.e2e.test_case_flow import hotline
from tests.harness import wait_until

PASSWORD = "test-initial-password"      # tests/conftest.py sets LANLING_STAFF_INITIAL_PASSWORD


@pytest.fixture(scope="module")
def accounts():
    return json.loads((REFERENCE_DATA / "accounts.json").read_text(encoding="utf-8"))


def login(system, username):
    response = system.post("/api/v1/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def account_for(accounts, **match):
    return next(a for a in accounts if all(a.get(k) == v for k, v in match.items()))


@pytest.fixture
def resolved_events(system):
    """A queue of our own on mediation.events, as an outside system would bind one."""
    name = f"e2e.case_resolved.{uuid.uuid4().hex[:6]}"
    with Connection(system.env["AMQP_URI"]) as conn:
        queue = Queue(name, Exchange("mediation.events", type="topic", durable=True, passive=True),
                      routing_key="case_resolved", auto_delete=False)
        queue(conn.channel()).declare()

        def next_for(case_no):
            def get():
                message = queue(conn.channel()).get(no_ack=True)
                if message is None:
                    return None
                event = load_event(message.body)
                return event.data if event.data["case_no"] == case_no else None
            return wait_until(get, 30, what=f"case_resolved for {case_no}")

        yield next_for
        queue(conn.channel()).delete()


def test_the_full_loop_through_the_gateway(system, accounts, resolved_events):
    case_no = system.post("/api/v1/submissions/hotline", hotline("12345-LOOP-0001")).json()["case_no"]
    view = system.wait_case(case_no, lambda v: v["status"] == "assigned", what="assigned")
    holder = view["holders"][0]
    mediator = login(system, account_for(accounts, directory_id=holder)["username"])
    head = login(system, account_for(accounts, role="township_head", township=view["township"])["username"])
    supervisor = login(system, account_for(accounts, role="county_supervisor")["username"])
    stranger = login(system, next(a for a in accounts if a["role"] == "mediator" and a["directory_id"] != holder
                                  and a.get("township") != view["township"])["username"])

    def act(token, action, **body):
        return system.post(f"/api/v1/cases/{case_no}/actions/{action}", body, token=token)

    # the mediator sees it in their worklist and reads it; another mediator may not act on it
    mine = system.get("/api/v1/cases?status=assigned", token=mediator).json()
    assert case_no in [item["case_no"] for item in mine["items"]]
    assert "accept" in system.get(f"/api/v1/cases/{case_no}", token=mediator).json()["allowed_actions"]
    refused = act(stranger, "accept")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert act(mediator, "resolve", terms=["x"]).status_code == 409
    assert act(mediator, "return").json()["fields"] == {"reason": ["required"]}

    assert act(mediator, "accept").status_code == 200
    assert act(mediator, "record_session", mode="face_to_face", attendees=["王秀英", "邻居李某"],
               notes="双方到场, 同意重新测量").status_code == 200
    assert act(mediator, "resolve", terms=["重新测量后拆除越界部分"], facts="宅基地越界半米").status_code == 200
    first = resolved_events(case_no)                         # feedback: the reply and the rating link
    assert first["summary"] and len(first["rating_token"]) <= 10
    link = f"{system.base_url}/r/{first['rating_token']}"            # the citizen needs no credentials
    assert requests.get(link, headers={"Accept": "application/json"}, timeout=10).json()["may_rate"]
    assert "调解结果评价" in requests.get(link, timeout=10).text

    # the citizen is not satisfied; the township head orders a redo
    rate = system.post(f"/api/v1/cases/{case_no}/evaluation",
                       {"token": first["rating_token"], "rating": "不满意", "comment": "没有拆"})
    assert rate.status_code == 200 and rate.json()["review"] is True
    assert system.post(f"/api/v1/cases/{case_no}/evaluation",
                       {"token": first["rating_token"], "rating": "满意"}).status_code == 409
    assert act(mediator, "redo", reason="x").status_code == 403
    assert act(head, "redo", reason="复核: 协议未履行").status_code == 200
    assert act(mediator, "record_session", mode="back_to_back", attendees=["王秀英"], notes="督促履行").status_code == 200
    assert act(mediator, "resolve", terms=["三日内拆除", "费用由李某承担"], judicial_confirmation=True).status_code == 200
    second = resolved_events(case_no)
    assert second["rating_token"] != first["rating_token"]
    rate = system.post(f"/api/v1/cases/{case_no}/evaluation", {"token": second["rating_token"], "rating": "满意"})
    assert rate.status_code == 200 and rate.json()["status"] == "closed"

    view = system.get(f"/api/v1/cases/{case_no}", token=supervisor).json()
    assert view["status"] == "closed" and view["redo_count"] == 1
    steps = [h["event"] for h in view["history"] if h.get("from")]
    assert steps == ["route", "assign", "accept", "record_session", "resolve", "evaluate", "redo", "record_session",
                     "resolve", "evaluate"]
    assert "王秀英" not in json.dumps(view, ensure_ascii=False)
    public = system.get(f"/api/v1/cases/{case_no}/agreement", token=supervisor)
    full = system.get(f"/api/v1/cases/{case_no}/agreement?version=full", token=mediator)
    assert public.status_code == 200 and "人民调解协议书" in public.text and "申请司法确认" in public.text
    assert "王秀英" not in public.text and "王秀英" in full.text
    assert system.get(f"/api/v1/cases/{case_no}/agreement?version=full", token=stranger).status_code == 403

    # attachments: type and size checked, stored encrypted, read back by staff in scope
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    url = f"{system.base_url}/api/v1/cases/{case_no}/attachments?kind=photo&filename=现场.png"
    added = requests.post(url, data=png, headers={"Authorization": f"Bearer {mediator}", "Content-Type": "image/png"},
                          timeout=10)
    assert added.status_code == 201, added.text
    lying = requests.post(url, data=b"MZ\x90\x00", timeout=10,
                          headers={"Authorization": f"Bearer {mediator}", "Content-Type": "image/png"})
    assert lying.status_code == 415
    back = system.get(f"/api/v1/cases/{case_no}/attachments/{added.json()['id']}", token=mediator)
    assert back.status_code == 200 and back.content == png
    assert system.get(f"/api/v1/cases/{case_no}/attachments/{added.json()['id']}", token=stranger).status_code == 403

    card = system.get("/api/v1/reports/scorecard?by=mediator&from=2020-01-01&to=2100-01-01", token=supervisor)
    row = next(r for r in card.json()["rows"] if r["group"] == holder)
    assert row["satisfaction"]["numerator"] == 1 and row["redo"] == {"value": 1.0, "numerator": 1, "denominator": 1}
    csv = system.get("/api/v1/reports/scorecard?by=township&from=2020-01-01&to=2100-01-01&format=csv",
                     token=supervisor)
    assert csv.headers["Content-Type"].startswith("text/csv") and "按时签收率" in csv.content.decode("utf-8-sig")
    topics = system.get("/api/v1/reports/hot-topics?days=7", token=supervisor).json()
    assert topics["cases"] >= 1
