"""Security end to end, on the real processes: who may call what (every endpoint of the gateway,
as the OpenAPI document and the gateway's routes list them, against every kind of caller), the
rate limits of the citizen-facing doors, personal data encrypted in the databases, the audit of
unmasked views, and key rotation on the running system's data.

The access table ACCESS below is the specification: an endpoint without an entry fails
`test_every_endpoint_has_an_access_entry`, so a new endpoint cannot ship without one.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import create_engine, inspect, text

from services.gateway.openapi import openapi_document
from services.routing.directory import REFERENCE_DATA
from tests.harness import wait_until

PASSWORD = "test-initial-password"      # tests/conftest.py sets LANLING_STAFF_INITIAL_PASSWORD
CHANNELS = ("hotline", "petition", "opinion", "app", "grid", "walkin")

# -- who ---------------------------------------------------------------------------------------------
# The principals: callers without credentials, each channel's source system (source_hotline submitted
# case A, source_petition case B), the two citizens (their lookup tokens), and each staff role, with
# "_a" the staff of case A (its mediator, its township's head and receptionist) and "_b" those of case B,
# in another township.
SOURCES = tuple(f"source_{c}" for c in CHANNELS)
STAFF = ("grid_worker", "mediator_a", "mediator_b", "township_head_a", "township_head_b", "receptionist_a",
         "unit_liaison", "county_supervisor", "counsellor", "psych_coordinator")
PRINCIPALS = ("anonymous", "wrong_key", "bad_token", *SOURCES, "citizen_a", "citizen_b", *STAFF, "operator")
EVERYONE = frozenset(PRINCIPALS)
NOBODY_ANONYMOUS = EVERYONE - {"anonymous", "wrong_key", "bad_token"}   # any valid credential
ANY_STAFF = frozenset(STAFF) | {"operator"}
ACTORS = frozenset({"operator", "county_supervisor", "township_head_a", "township_head_b", "mediator_a",
                    "mediator_b", "grid_worker", "unit_liaison"})            # staff who act on cases (actor_of)
EDITORS = frozenset({"operator", "county_supervisor", "township_head_a", "township_head_b"})
OVERSIGHT = frozenset({"operator", "county_supervisor", "psych_coordinator"})
POOL_READERS = OVERSIGHT | {"township_head_a", "township_head_b"}
AUDITORS = frozenset({"operator", "county_supervisor"})
PUBLIC = "public"   # no credentials needed; everyone gets past the door (the answer may still be 4xx)

# -- what ------------------------------------------------------------------------------------------------
# (method, path) -> the principals who get past the gate. Everyone else must get 401 (no or bad
# credentials) or 403 (not theirs), or 404 where the model hides what exists.
ACCESS: dict[tuple[str, str], frozenset | str] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,   # like health: counts and ages only, no personal data; scraped by Prometheus
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/asyncapi.json"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/lookup"): PUBLIC,
    ("POST", "/api/v1/cases/{case_no}/evaluation"): PUBLIC,   # the rating token is the proof
    ("GET", "/r/{token}"): PUBLIC,
    ("POST", "/api/v1/notify/opt-outs"): PUBLIC,             # staff token, or case number + phone
    ("DELETE", "/api/v1/notify/opt-outs"): PUBLIC,
    **{("POST", f"/api/v1/submissions/{c}"): frozenset({"operator", f"source_{c}"}) for c in CHANNELS},
    ("POST", "/api/v1/submissions/{channel}"): frozenset({"operator", "source_hotline"}),  # the route (hotline)
    # a case: its parties, its source system, the staff who handle it or oversee it
    ("GET", "/api/v1/cases/{case_no}"): frozenset({"operator", "county_supervisor", "psych_coordinator",
                                                   "source_hotline", "citizen_a", "mediator_a", "township_head_a",
                                                   "receptionist_a"}),
    ("GET", "/api/v1/cases"): ACTORS,
    ("POST", "/api/v1/cases/{case_no}/actions/{action}"): frozenset({"operator", "county_supervisor",
                                                                    "mediator_a", "township_head_a"}),
    ("PUT", "/api/v1/cases/{case_no}/parties"): frozenset({"operator", "county_supervisor", "mediator_a",
                                                          "township_head_a"}),
    ("POST", "/api/v1/cases/{case_no}/attachments"): frozenset({"operator", "county_supervisor", "mediator_a",
                                                               "township_head_a"}),
    ("GET", "/api/v1/cases/{case_no}/attachments/{attachment_id}"): frozenset({
        "operator", "county_supervisor", "mediator_a", "township_head_a"}),
    ("GET", "/api/v1/cases/{case_no}/agreement"): frozenset({
        "operator", "county_supervisor", "mediator_a", "township_head_a"}),          # version=full
    ("POST", "/api/v1/cases/{case_no}/sources/{channel}/{reference}/unmerge"): frozenset({
        "operator", "county_supervisor", "township_head_a", "receptionist_a"}),
    ("GET", "/api/v1/cases/{case_no}/deliveries"): frozenset({
        "operator", "county_supervisor", "psych_coordinator", "mediator_a", "township_head_a", "receptionist_a"}),
    ("GET", "/api/v1/cases/{case_no}/routing"): frozenset({
        "operator", "county_supervisor", "psych_coordinator", "mediator_a", "township_head_a", "receptionist_a"}),
    ("POST", "/api/v1/cases/{case_no}/mediator"): frozenset({
        "operator", "county_supervisor", "township_head_a", "receptionist_a", "citizen_a", "source_hotline"}),
    ("GET", "/api/v1/reports/scorecard"): frozenset({"operator", "county_supervisor", "township_head_a",
                                                     "township_head_b"}),  # mediation: heads and supervisors
    ("GET", "/api/v1/reports/hot-topics"): ACTORS,
    # the directory
    **{("GET", p): NOBODY_ANONYMOUS for p in (
        "/api/v1/reference/townships", "/api/v1/reference/villages", "/api/v1/reference/grids",
        "/api/v1/reference/centres", "/api/v1/reference/units", "/api/v1/mediators",
        "/api/v1/mediators/{mediator_id}")},
    ("POST", "/api/v1/classify"): NOBODY_ANONYMOUS,
    **{(m, p): EDITORS for m, p in (
        ("POST", "/api/v1/mediators"), ("PATCH", "/api/v1/mediators/{mediator_id}"),
        ("POST", "/api/v1/mediators/{mediator_id}/deactivate"), ("POST", "/api/v1/grid-workers"),
        ("PATCH", "/api/v1/grid-workers/{worker_id}"), ("POST", "/api/v1/units"), ("PATCH", "/api/v1/units/{code}"),
        ("GET", "/api/v1/staff"), ("POST", "/api/v1/staff"), ("PATCH", "/api/v1/staff/{staff_id}"),
        ("POST", "/api/v1/staff/{staff_id}/deactivate"), ("GET", "/api/v1/directory/changes"))},
    # notifications
    **{(m, p): frozenset(STAFF) for m, p in (
        ("GET", "/api/v1/inbox"), ("POST", "/api/v1/inbox/read"), ("POST", "/api/v1/inbox/{message_id}/read"),
        ("GET", "/api/v1/notify/opt-outs"))},
    ("GET", "/api/v1/notify/duty"): frozenset({"operator", "county_supervisor", "township_head_a",
                                               "township_head_b", "psych_coordinator"}),
    ("POST", "/api/v1/notify/duty"): frozenset({"operator", "county_supervisor", "township_head_a"}),
    ("DELETE", "/api/v1/notify/duty/{entry_id}"): frozenset({"operator", "county_supervisor", "township_head_a",
                                                             "township_head_b"}),
    ("GET", "/api/v1/notify/deliveries"): frozenset({"operator", "county_supervisor"}),
    ("POST", "/api/v1/notify/deliveries/{delivery_id}/retry"): frozenset({"operator", "county_supervisor"}),
    # psych
    ("GET", "/api/v1/psych/counsellors"): POOL_READERS,
    ("POST", "/api/v1/psych/counsellors"): frozenset({"operator", "psych_coordinator"}),
    ("GET", "/api/v1/psych/counsellors/{counsellor_id}"): POOL_READERS | {"counsellor"},   # a counsellor: own
    ("PATCH", "/api/v1/psych/counsellors/{counsellor_id}"): frozenset({"operator", "psych_coordinator", "counsellor"}),
    ("POST", "/api/v1/psych/counsellors/{counsellor_id}/deactivate"): frozenset({"operator", "psych_coordinator"}),
    ("POST", "/api/v1/psych/counsellors/{counsellor_id}/activate"): frozenset({"operator", "psych_coordinator"}),
    ("GET", "/api/v1/psych/stats"): POOL_READERS,
    ("POST", "/api/v1/psych/match"): OVERSIGHT,
    ("GET", "/api/v1/psych/cases"): OVERSIGHT | {"counsellor"},
    ("GET", "/api/v1/psych/cases/{case_no}"): OVERSIGHT | {"counsellor"},
    ("POST", "/api/v1/psych/cases/{case_no}/consent"): OVERSIGHT | {"counsellor", "mediator_a", "township_head_a",
                                                                   "receptionist_a"},
    ("POST", "/api/v1/psych/cases/{case_no}/offers"): frozenset({"operator", "psych_coordinator"}),
    ("GET", "/api/v1/psych/offers"): OVERSIGHT | {"counsellor"},
    ("POST", "/api/v1/psych/offers/{offer_id}/accept"): frozenset({"counsellor"}),
    ("POST", "/api/v1/psych/offers/{offer_id}/decline"): frozenset({"counsellor"}),
    ("POST", "/api/v1/psych/cases/{case_no}/sessions"): frozenset({"counsellor"}),
    ("GET", "/api/v1/psych/cases/{case_no}/sessions"): OVERSIGHT | {"counsellor"},
    ("POST", "/api/v1/psych/cases/{case_no}/outcome"): frozenset({"operator", "psych_coordinator", "counsellor"}),
    # the audit of unmasked views
    ("GET", "/api/v1/audit/unmasked-views"): AUDITORS,
}


def gateway_routes() -> set[tuple[str, str]]:
    """Every (method, path) the gateway serves, from its entrypoints, in OpenAPI's {name} form."""
    from services.gateway.service import GatewayService

    routes = set()
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", entrypoint.url)
            for method in entrypoint.method.split(","):
                routes.add((method.strip().upper(), path))
    return routes


def documented_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in openapi_document()["paths"].items()
            for method in operations if method in ("get", "post", "put", "patch", "delete")}


def test_every_endpoint_has_an_access_entry():
    """Unit-level: the OpenAPI document and the gateway's routes, each entry in ACCESS, and back."""
    served, documented = gateway_routes(), documented_routes()
    missing = sorted((served | documented) - set(ACCESS))
    assert not missing, f"endpoints without an access entry in tests/e2e/test_security.py: {missing}"
    stale = sorted(set(ACCESS) - served - documented)
    assert not stale, f"access entries for endpoints that no longer exist: {stale}"
    undocumented = sorted(served - documented - {("POST", "/api/v1/submissions/{channel}")})
    assert undocumented == [("GET", "/api/v1/cases/{case_no}/attachments/{attachment_id}"),
                            ("GET", "/api/v1/openapi.json"), ("GET", "/r/{token}")]


# -- the system, two cases and a token for every principal ----------------------------------------------
def ago(**delta) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


PHONE_A, PHONE_B = "13812340001", "13812340002"
NAME_A, NAME_B = "欧阳秀英", "司马桂兰"
ID_B = "371324198203150024"


def case_a_body(tag: str) -> dict:
    return {"order_no": f"12345-SEC-{tag}", "caller_name": NAME_A, "caller_phone": PHONE_A, "received_at": ago(minutes=3),
            "content": "俺家东边邻居盖房子占了俺家宅基地半米，找村里调解了两回没用，请求调解。", "township": "兰陵镇"}


def case_b_body(tag: str) -> dict:
    return {"petition_no": f"XF-SEC-{tag}", "petitioner_name": NAME_B, "petitioner_phone": PHONE_B,
            "id_number": ID_B, "form": "letter", "received_at": ago(hours=1),
            "content": "丈夫去世后，小叔子强占我家三亩承包地耕种，请求确认承包经营权。", "township": "卞庄街道"}


@pytest.fixture(scope="module")
def world(system):
    accounts = json.loads((REFERENCE_DATA / "accounts.json").read_text(encoding="utf-8"))
    from services.psych.handlers import staff_accounts

    accounts += staff_accounts()
    headers: dict[str, dict] = {"anonymous": {}, "wrong_key": {"X-Api-Key": "ll_" + "x" * 43},
                                "bad_token": {"Authorization": "Bearer not.a.token"},
                                "operator": {"X-Api-Key": system.api_key}}
    for channel in CHANNELS:
        out = system.lanling("apikey", "create", f"sec-{channel}", "--channels", channel).stdout
        headers[f"source_{channel}"] = {"X-Api-Key": out.strip().splitlines()[-1].strip()}
    tag = uuid.uuid4().hex[:6]
    a = requests.post(f"{system.base_url}/api/v1/submissions/hotline", json=case_a_body(tag),
                      headers=headers["source_hotline"], timeout=30)
    b = requests.post(f"{system.base_url}/api/v1/submissions/petition", json=case_b_body(tag),
                      headers=headers["source_petition"], timeout=30)
    assert a.status_code == 202 and b.status_code == 202, (a.text, b.text)
    case_a, case_b = a.json()["case_no"], b.json()["case_no"]
    view_a = system.wait_case(case_a, lambda v: v["status"] == "assigned" and v.get("holders"), what="A assigned")
    view_b = system.wait_case(case_b, lambda v: v["status"] == "assigned" and v.get("holders"), what="B assigned")
    assert view_a["township"] != view_b["township"]

    def login(username):
        response = requests.post(f"{system.base_url}/api/v1/auth/login",
                                 json={"username": username, "password": PASSWORD}, timeout=30)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def account(**match):
        return next(x for x in accounts if all(x.get(k) == v for k, v in match.items()))

    holder_a, holder_b = view_a["holders"][0], view_b["holders"][0]
    staff = {
        "mediator_a": account(directory_id=holder_a), "mediator_b": account(directory_id=holder_b),
        "township_head_a": account(role="township_head", township=view_a["township"]),
        "township_head_b": account(role="township_head", township=view_b["township"]),
        "receptionist_a": account(role="receptionist", township=view_a["township"]),
        "grid_worker": next(x for x in accounts if x["role"] == "grid_worker" and x["directory_id"] != holder_a),
        "unit_liaison": account(role="unit_liaison"), "county_supervisor": account(role="county_supervisor"),
        "counsellor": account(role="counsellor"), "psych_coordinator": account(role="psych_coordinator"),
    }
    assert staff["mediator_a"]["role"] in ("mediator", "grid_worker")
    for name, acc in staff.items():
        headers[name] = login(acc["username"])
    for name, case_no, phone in (("citizen_a", case_a, PHONE_A), ("citizen_b", case_b, PHONE_B)):
        response = requests.post(f"{system.base_url}/api/v1/lookup", json={"case_no": case_no, "phone": phone},
                                 timeout=30)
        assert response.status_code == 200, response.text
        headers[name] = {"Authorization": f"Bearer {response.json()['token']}"}
    # an attachment on case A, added by its mediator
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    added = requests.post(f"{system.base_url}/api/v1/cases/{case_a}/attachments?kind=photo&filename=a.png",
                          data=png, headers={**headers["mediator_a"], "Content-Type": "image/png"}, timeout=30)
    assert added.status_code == 201, added.text
    return {"system": system, "headers": headers, "case_a": case_a, "case_b": case_b, "view_a": view_a,
            "view_b": view_b, "staff": staff, "attachment_a": added.json()["id"], "accounts": accounts}


def values(world) -> dict:
    """Path parameters: case A, and ids that exist (or, for edits, that do not, so nothing changes)."""
    return {"case_no": world["case_a"], "action": "return", "attachment_id": world["attachment_a"],
            "channel": "hotline", "reference": "no-such-reference", "token": "no-such-token",
            "mediator_id": "MT-NOPE-9", "worker_id": "GW-NOPE-9", "code": "U-NOPE", "staff_id": "S-NOPE-9",
            "message_id": "999999999", "entry_id": "999999999", "delivery_id": "no-such-delivery",
            "counsellor_id": world["staff"]["counsellor"]["directory_id"], "offer_id": "no-such-offer"}


# bodies that pass the door but change nothing (refused further on as invalid, unknown or in conflict)
BODIES = {
    ("POST", "/api/v1/auth/login"): {"username": "nobody", "password": "wrong"},
    ("POST", "/api/v1/lookup"): {"case_no": "371324-20000101-000000", "phone": "13000000000"},
    ("POST", "/api/v1/cases/{case_no}/evaluation"): {"token": "no-such-token", "rating": "满意"},
    ("POST", "/api/v1/notify/opt-outs"): {"channels": ["no-such-channel"]},
    ("DELETE", "/api/v1/notify/opt-outs"): {"channels": ["no-such-channel"]},
    ("PUT", "/api/v1/cases/{case_no}/parties"): {"parties": "not a list"},
    ("POST", "/api/v1/cases/{case_no}/mediator"): {"mediators": ["MT-NOPE-9"]},
    ("POST", "/api/v1/cases/{case_no}/sources/{channel}/{reference}/unmerge"): {"reason": "probe"},
    ("POST", "/api/v1/notify/duty"): {"role": "no-such-role", "township": "371324-003"},
    ("POST", "/api/v1/psych/counsellors"): {"name": ""},
    ("PATCH", "/api/v1/psych/counsellors/{counsellor_id}"): {"availability": "whenever"},
    ("POST", "/api/v1/psych/match"): {"urgent": "maybe"},
    ("POST", "/api/v1/psych/cases/{case_no}/consent"): {"consent": "maybe"},
    ("POST", "/api/v1/psych/cases/{case_no}/offers"): {"counsellor_id": "PC-NOPE"},
    ("POST", "/api/v1/psych/cases/{case_no}/sessions"): {"mode": "telepathy"},
    ("POST", "/api/v1/psych/cases/{case_no}/outcome"): {"outcome": "no-such-outcome"},
    ("POST", "/api/v1/classify"): {"text": "邻居占了我家宅基地"},
    ("POST", "/api/v1/inbox/read"): {"ids": [999999999]},
    ("POST", "/api/v1/mediators"): {"name": ""}, ("POST", "/api/v1/grid-workers"): {"grid": ""},
    ("POST", "/api/v1/units"): {"code": ""}, ("POST", "/api/v1/staff"): {"role": ""},
    **{("POST", f"/api/v1/submissions/{c}"): {} for c in CHANNELS},
    ("POST", "/api/v1/submissions/{channel}"): {},
}
QUERIES = {
    ("GET", "/api/v1/cases/{case_no}/agreement"): {"version": "full"},
    ("GET", "/api/v1/reports/scorecard"): {"from": "2020-01-01", "to": "2100-01-01"},
}


def call(world, method: str, template: str, principal: str) -> requests.Response:
    path = template.format(**values(world))
    headers = dict(world["headers"][principal])
    kwargs = {"params": QUERIES.get((method, template))}
    if template == "/api/v1/cases/{case_no}/attachments" and method == "POST":
        kwargs["data"], headers["Content-Type"] = b"not an image", "image/png"
    elif method in ("POST", "PUT", "PATCH", "DELETE"):
        kwargs["json"] = BODIES.get((method, template), {})
    return requests.request(method, world["system"].base_url + path, headers=headers, timeout=60, **kwargs)


def matrix(world) -> dict:
    return {(method, template, who): call(world, method, template, who)
            for method, template in sorted(ACCESS) for who in PRINCIPALS}


def test_probe(world):
    if not os.environ.get("SECURITY_PROBE"):
        pytest.skip("set SECURITY_PROBE=1 to print the matrix")
    for (method, template, who), response in matrix(world).items():
        print(f"PROBE {method} {template} {who} {response.status_code} {response.text[:80]!r}")


def verdict(method: str, template: str, who: str, status: int) -> str | None:
    """None when the answer matches the access table, else what is wrong."""
    allowed = ACCESS[(method, template)]
    if status >= 500:
        return f"{status}: a server error"
    if allowed == PUBLIC:
        if status == 403 or (status == 401 and template != "/api/v1/auth/login"):
            return f"{status}: a public endpoint refused a caller"
        return None
    if who in allowed:
        return f"{status}: refused at the door" if status in (401, 403) else None
    if who in ("anonymous", "wrong_key", "bad_token"):
        return None if status == 401 else f"{status}: expected 401 without valid credentials"
    return None if status == 403 else f"{status}: expected 403"


def test_every_endpoint_against_every_principal(world):
    """The access table, endpoint by endpoint: those listed get past the gateway's checks (any answer
    but 401/403/5xx), everyone else gets 401 without valid credentials and 403 otherwise."""
    results = matrix(world)
    problems = [f"{method} {template} as {who}: {wrong} ({response.text[:120]})"
                for (method, template, who), response in results.items()
                if (wrong := verdict(method, template, who, response.status_code))]
    endpoints = len(ACCESS)
    print(f"access table: {endpoints} endpoints x {len(PRINCIPALS)} principals = {len(results)} requests")
    assert not problems, f"{len(problems)} of {len(results)} answers differ from ACCESS:\n" + "\n".join(problems)


def test_a_party_may_not_read_another_partys_case(world):
    system, headers = world["system"], world["headers"]
    mine = requests.get(f"{system.base_url}/api/v1/cases/{world['case_b']}", headers=headers["citizen_b"], timeout=30)
    assert mine.status_code == 200 and mine.json()["case_no"] == world["case_b"]
    for path in (f"/api/v1/cases/{world['case_a']}", f"/api/v1/cases/{world['case_a']}/agreement",
                 f"/api/v1/cases/{world['case_a']}/deliveries", f"/api/v1/cases/{world['case_a']}/routing"):
        theirs = requests.get(system.base_url + path, headers=headers["citizen_b"], timeout=30)
        assert theirs.status_code in (403, 404), (path, theirs.status_code, theirs.text)
        assert NAME_A not in theirs.text and PHONE_A not in theirs.text and "****" + PHONE_A[-4:] not in theirs.text
    chosen = requests.post(f"{system.base_url}/api/v1/cases/{world['case_a']}/mediator",
                           json={"mediators": [world["view_a"]["holders"][0]]}, headers=headers["citizen_b"], timeout=30)
    assert chosen.status_code == 403


def test_a_mediator_of_another_township_may_not_read_or_act_on_a_case(world):
    system, headers, case_a = world["system"], world["headers"], world["case_a"]
    assert world["staff"]["mediator_b"]["township"] != world["view_a"]["township"]
    for method, path in (("GET", f"/api/v1/cases/{case_a}"), ("GET", f"/api/v1/cases/{case_a}/deliveries"),
                         ("GET", f"/api/v1/cases/{case_a}/routing"),
                         ("GET", f"/api/v1/cases/{case_a}/agreement?version=full"),
                         ("GET", f"/api/v1/cases/{case_a}/attachments/{world['attachment_a']}"),
                         ("POST", f"/api/v1/cases/{case_a}/actions/accept")):
        response = requests.request(method, system.base_url + path, headers=headers["mediator_b"], json={}, timeout=30)
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    worklist = requests.get(f"{system.base_url}/api/v1/cases", headers=headers["mediator_b"], timeout=30).json()
    assert case_a not in [item["case_no"] for item in worklist["items"]]
    own = requests.get(f"{system.base_url}/api/v1/cases/{case_a}", headers=headers["mediator_a"], timeout=30)
    assert own.status_code == 200


# -- the audit of unmasked views ----------------------------------------------------------------------------
def audit(world, **params) -> list[dict]:
    response = requests.get(f"{world['system'].base_url}/api/v1/audit/unmasked-views", params=params,
                            headers=world["headers"]["county_supervisor"], timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_every_unmasked_view_by_staff_is_recorded(world):
    system, headers, case_a = world["system"], world["headers"], world["case_a"]
    mediator = world["staff"]["mediator_a"]["username"]
    before = {item["id"] for item in audit(world, case_no=case_a, limit=1000)}
    started = datetime.now(timezone.utc) - timedelta(seconds=5)

    # the mediator opens the attachment (the file as uploaded): recorded
    url = f"{system.base_url}/api/v1/cases/{case_a}/attachments/{world['attachment_a']}"
    assert requests.get(url, headers=headers["mediator_a"], timeout=30).status_code == 200
    # refused or masked views are not recorded: nothing was shown
    assert requests.get(url, headers=headers["mediator_b"], timeout=30).status_code == 403
    assert requests.get(f"{system.base_url}/api/v1/cases/{case_a}", headers=headers["mediator_a"],
                        timeout=30).status_code == 200
    new = [item for item in audit(world, case_no=case_a, limit=1000) if item["id"] not in before]
    assert len(new) == 1, new
    (entry,) = new
    assert entry["actor"] == mediator and entry["role"] == world["staff"]["mediator_a"]["role"]
    assert entry["subject"] == f"attachment:{world['attachment_a']}" and entry["case_no"] == case_a
    assert entry["request"] == f"GET /api/v1/cases/{case_a}/attachments/{world['attachment_a']}"
    assert started <= datetime.fromisoformat(entry["at"]) <= datetime.now(timezone.utc) + timedelta(seconds=5)

    # the psych coordinator reads a counsellor's record with the phone: recorded; the counsellor's own is not
    counsellor = world["staff"]["counsellor"]["directory_id"]
    record = requests.get(f"{system.base_url}/api/v1/psych/counsellors/{counsellor}",
                          headers=headers["psych_coordinator"], timeout=30)
    assert record.status_code == 200 and "****" not in str(record.json().get("phone"))
    own = requests.get(f"{system.base_url}/api/v1/psych/counsellors/{counsellor}", headers=headers["counsellor"],
                       timeout=30)
    assert own.status_code == 200
    masked = requests.get(f"{system.base_url}/api/v1/psych/counsellors/{counsellor}",
                          headers=headers["county_supervisor"], timeout=30)
    assert "****" in str(masked.json().get("phone"))
    coordinator = world["staff"]["psych_coordinator"]["username"]
    views = [item for item in audit(world, actor=coordinator) if item["subject"] == f"counsellor:{counsellor}"]
    assert len(views) >= 1 and views[0]["case_no"] is None
    assert not [item for item in audit(world, actor=world["staff"]["counsellor"]["username"])]
    assert not [item for item in audit(world, actor=world["staff"]["county_supervisor"]["username"])
                if item["subject"] == f"counsellor:{counsellor}"]
    # filters: by time
    assert audit(world, case_no=case_a, **{"from": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()}) == []


# -- personal data at rest and in the logs ---------------------------------------------------------------
SERVICES = ("intake", "routing", "mediation", "psych", "notify", "gateway")
PLAINTEXT = (NAME_A, NAME_B, PHONE_A, PHONE_B, ID_B, "138 1234 0001")


def database_url(system, service: str) -> str:
    return system.env.get(f"{service.upper()}_DB_URL") or f"sqlite:///{system.env['LANLING_VAR']}/{service}.db"


def raw_text_of_every_row(system):
    """(service, table, text of the row) for every row of every table, read with plain SQL."""
    for service in SERVICES:
        engine = create_engine(database_url(system, service))
        try:
            with engine.connect() as conn:
                for table in inspect(conn).get_table_names():
                    for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                        yield service, table, " ".join(
                            bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) else str(v)
                            for v in row)
        finally:
            engine.dispose()


def test_no_plaintext_personal_data_in_any_service_database(world):
    rows, found = 0, []
    tables = set()
    for service, table, row in raw_text_of_every_row(world["system"]):
        rows += 1
        tables.add((service, table))
        found += [f"{service}.{table}: {value}" for value in PLAINTEXT if value in row]
    print(f"at rest: {rows} rows in {len(tables)} tables of {len(SERVICES)} databases scanned")
    assert rows > 100 and {s for s, _ in tables} >= {"intake", "mediation", "notify"}
    assert not found, "plaintext personal data at rest:\n" + "\n".join(sorted(set(found)))


def test_the_logs_show_personal_data_masked(world):
    text_of_logs = world["system"].log_tail(lines=100000)
    assert len(text_of_logs) > 1000
    leaked = [value for value in PLAINTEXT if value in text_of_logs]
    assert not leaked, f"plaintext personal data in the logs: {leaked}"


# -- rate limits on the citizen-facing doors -------------------------------------------------------------------
def from_address(system, source: str, method: str, path: str, body: dict) -> tuple[int, dict, dict]:
    """A request from another loopback address, so each limit is tested on its own counters."""
    import http.client

    port = int(system.base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.parametrize("door, source", [("opt-out", "127.0.0.21"), ("evaluation", "127.0.0.22"),
                                          ("lookup", "127.0.0.23")])
def test_repeated_misses_at_a_citizen_door_get_429_with_retry_after(world, door, source):
    system = world["system"]
    # one limiter counts the misses of every door per address and per case: each door its own case here
    case_a = world["case_b"] if door == "lookup" else world["case_a"]
    phone = PHONE_B if door == "lookup" else PHONE_A
    request = {
        "opt-out": lambda n: ("POST", "/api/v1/notify/opt-outs",
                              {"case_no": case_a, "phone": f"1390000{n:04d}", "channels": ["sms"]}),
        "evaluation": lambda n: ("POST", f"/api/v1/cases/{case_a}/evaluation",
                                 {"token": f"guess{n:05d}", "rating": "满意"}),
        "lookup": lambda n: ("POST", "/api/v1/lookup", {"case_no": case_a, "phone": f"1390000{n:04d}"}),
    }[door]
    limit = int(os.environ.get("LOOKUP_MAX_MISSES") or 5)
    answers = [from_address(system, source, *request(n)) for n in range(limit)]
    assert all(status in (403, 404) for status, _, _ in answers), [a[0] for a in answers]
    status, headers, body = from_address(system, source, *request(limit))
    assert status == 429 and body["error"] == "rate_limited", (status, body)
    assert 0 < int(headers["Retry-After"]) <= 900
    if door in ("opt-out", "lookup"):
        # the case itself is now protected: even the right phone from another address waits
        right = {"opt-out": ("POST", "/api/v1/notify/opt-outs", {"case_no": case_a, "phone": phone,
                                                                 "channels": ["sms"]}),
                 "lookup": ("POST", "/api/v1/lookup", {"case_no": case_a, "phone": phone})}[door]
        assert from_address(system, f"{source}1", *right)[0] == 429


# -- key rotation on the system's own data (last: it stops the system) ----------------------------------------
def test_rotate_keys_re_encrypts_every_service_database(world):
    from cryptography.fernet import Fernet

    system = world["system"]
    for label in list(system.processes):
        system.kill(label, __import__("signal").SIGINT)
    old = system.env["LANLING_DATA_KEYS"]
    new = Fernet.generate_key().decode()
    both = dict(system.env, LANLING_DATA_KEYS=f"{new},{old}")
    only_new = dict(system.env, LANLING_DATA_KEYS=new)
    import subprocess

    from tests.harness import LANLING, ROOT

    def lanling(env, *args):
        return subprocess.run([LANLING, "rotate-keys", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=600)

    before = lanling(only_new, "--dry-run")
    assert before.returncode == 1 and "still under an old key" in before.stdout, before.stdout + before.stderr
    rotated = lanling(both)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    counts = [int(n) for n in re.findall(r" (\d+)(?=[,;])", rotated.stdout)]
    print(rotated.stdout)
    assert sum(counts) > 50
    for service in ("intake", "mediation", "notify", "routing", "psych"):
        assert re.search(rf"lanling: {service}: .*[1-9]", rotated.stdout), (service, rotated.stdout)
    after = lanling(only_new, "--dry-run")   # with the old key gone, everything is readable
    assert after.returncode == 0 and "every stored value is under the newest key" in after.stdout, after.stdout
