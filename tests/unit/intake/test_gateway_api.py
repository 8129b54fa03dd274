"""Intake's gateway endpoints with nameko's worker_factory: the citizen lookup (rate limit,
token, what a citizen may see) and who may undo a merge. The other services are mocked at
their RPC boundary."""
from __future__ import annotations

import json
from datetime import timedelta
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.common.clock import ManualClock
from services.common.web import RateLimited
from services.contracts.errors import Forbidden, Invalid, NotFound
from services.gateway import api_intake, auth
from services.gateway.ratelimit import MissLimiter
from services.gateway.service import GatewayService
from tests.unit.intake.conftest import NOW

CASE = "371324-20260302-000001"
OWN = {"case_no": CASE, "accepted_at": NOW.isoformat(), "township": "371324-004", "title": "邻居砌墙…",
       "intake_status": "open", "outcome": None, "reply": None, "finished_at": None,
       "sources": [{"channel": "hotline", "received_at": NOW.isoformat(), "feedback_sent_at": None,
                    "obligations": [{"label": "回访来电人，告知办理结果", "due_at": None}]}]}
WORKFLOW = {"status": "assigned", "level": "township", "mechanism": "supermarket", "township": "371324-004",
            "mediator": {"id": "MT-1", "name": "苗振华", "level": "township", "role": "mediator"},
            "deadline": "2026-03-04T10:00:00+08:00",
            "history": [{"at": "x", "event": "case_routed", "actor": "routing", "reason": "内部备注", "detail": {"a": 1}},
                        {"at": "y", "event": "staff_note", "actor": "staff-1", "detail": {"note": "当事人情绪激动"}},
                        {"at": "z", "event": "case_assigned", "actor": "system", "detail": {}}]}


def request(path: str, body: dict | None = None, remote: str = "10.0.0.1", headers: dict | None = None) -> Request:
    builder = EnvironBuilder(path=path, method="POST", data=json.dumps(body or {}), content_type="application/json",
                             headers=headers or {}, environ_base={"REMOTE_ADDR": remote})
    return Request(builder.get_environ())


@pytest.fixture
def gateway(monkeypatch):
    monkeypatch.setattr(api_intake, "LOOKUP_MISSES", MissLimiter(3, timedelta(minutes=15)))
    clock = ManualClock(NOW)
    service = worker_factory(GatewayService, db=Mock(clock=clock), config={"RPC_TIMEOUT": 1.0})
    service.clock = clock

    def intake_lookup(case_no, phone):
        if case_no == CASE and phone == "13800001001":
            return OWN
        raise NotFound("no case with this number and phone")

    service.intake.lookup.side_effect = intake_lookup
    service.mediation.get_case.return_value = WORKFLOW
    return service


def test_lookup_shows_progress_without_staff_notes_and_gives_a_short_lived_token(gateway, monkeypatch):
    monkeypatch.setenv("LANLING_TOKEN_SECRET", "test-token-secret")
    view = gateway.lookup(request("/api/v1/lookup", {"case_no": CASE, "phone": "13800001001"}))
    assert view["status"] == "assigned" and view["status_label"] == "已交办"
    assert view["mediator"] == {"name": "苗振华", "level": "township"}
    assert [p["event"] for p in view["progress"]] == ["case_received", "case_routed", "case_assigned"]
    assert "内部备注" not in str(view) and "情绪激动" not in str(view) and "MT-1" not in str(view)
    principal = auth.read_token(view["token"], "test-token-secret", NOW + timedelta(minutes=29))
    assert principal.kind == "citizen" and principal.cases == (CASE,)
    assert auth.read_token(view["token"], "test-token-secret", NOW + timedelta(minutes=31)) is None


def test_any_mismatch_is_404_and_repeated_misses_are_429_per_address_and_per_case(gateway):
    for phone in ("13800009991", "13800009992", "13800009993"):
        with pytest.raises(NotFound):
            gateway.lookup(request("/api/v1/lookup", {"case_no": CASE, "phone": phone}))
    with pytest.raises(RateLimited) as limited:  # even the right phone, from this address
        gateway.lookup(request("/api/v1/lookup", {"case_no": CASE, "phone": "13800001001"}))
    assert 0 < limited.value.retry_after <= 15 * 60
    with pytest.raises(RateLimited):  # this case number, from another address
        gateway.lookup(request("/api/v1/lookup", {"case_no": CASE, "phone": "13800001001"}, remote="10.0.0.2"))
    other = "371324-20260302-000002"
    with pytest.raises(NotFound):  # another case from another address is not blocked
        gateway.lookup(request("/api/v1/lookup", {"case_no": other, "phone": "1"}, remote="10.0.0.3"))
    gateway.clock.advance(timedelta(minutes=16))
    assert gateway.lookup(request("/api/v1/lookup", {"case_no": CASE, "phone": "13800001001"}))["case_no"] == CASE


def test_lookup_needs_both_fields_in_the_body(gateway):
    with pytest.raises(Invalid) as raised:
        gateway.lookup(request("/api/v1/lookup", {"case_no": CASE}))
    assert set(raised.value.fields) == {"phone"}


def test_unmerge_is_for_centre_staff_of_the_case_s_township(gateway, monkeypatch):
    monkeypatch.setattr(gateway, "_authenticate", lambda req: principal)
    gateway.intake.get_case.return_value = {"township": "371324-004"}
    gateway.intake.unmerge.return_value = {"new_case_no": "371324-20260302-000009"}
    path = f"/api/v1/cases/{CASE}/sources/petition/XF-1/unmerge"
    for principal in (auth.Principal("source", "hotline-12345", "source", channels=("hotline",)),
                      auth.Principal("citizen", "c", "citizen", cases=(CASE,)),
                      auth.Principal("staff", "m1", "mediator"),
                      auth.Principal("staff", "t9", "township_head", township="371324-009")):
        with pytest.raises(Forbidden):
            gateway.unmerge(request(path, {"reason": "不是一件事"}), CASE, "petition", "XF-1")
    principal = auth.Principal("staff", "t4", "township_head", township="371324-004")
    status, body = gateway.unmerge(request(path, {"reason": " 不是一件事 "}), CASE, "petition", "XF-1")
    assert status == 202 and body["new_case_no"].endswith("000009")
    gateway.intake.unmerge.assert_called_with(CASE, "petition", "XF-1", "不是一件事", "t4")
    with pytest.raises(Invalid):
        gateway.unmerge(request(path, {}), CASE, "petition", "XF-1")


def test_the_limiter_forgets_old_misses_and_bounds_its_memory():
    limiter = MissLimiter(2, timedelta(seconds=60), max_keys=3)
    limiter.miss(["a"], NOW)
    limiter.miss(["a"], NOW + timedelta(seconds=30))
    assert limiter.retry_after(["a"], NOW + timedelta(seconds=31)) == 29
    assert limiter.retry_after(["a"], NOW + timedelta(seconds=61)) is None
    for key in "bcde":
        limiter.miss([key], NOW)
    assert len(limiter._misses) == 3


def test_the_asyncapi_document_describes_every_channel():
    from services.gateway.asyncapi import asyncapi_document

    document = asyncapi_document()
    assert {f"{c}.submitted" for c in ("hotline", "petition", "opinion", "app", "grid", "walkin")} <= set(
        document["channels"])
    assert "required" in document["components"]["messages"]["HotlineSubmission"]["payload"]
