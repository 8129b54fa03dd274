"""Sessions: confidentiality of notes, session checks, follow-ups and outcomes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.clock import ManualClock
from services.psych.sessions import (
    COORDINATOR_ROLE, COUNSELLOR_ROLE, can_read_notes, check_outcome, check_session, follow_up_due,
    follow_up_overdue, new_session, public_view, view_for,
)

NOTES = "当事人丧子后失眠，自述有轻生念头，已约家属陪同。"


@pytest.fixture
def session(now):
    return new_session("371324-20250604-000007", "PC-0042", now, "crisis", NOTES)


# --- confidentiality --------------------------------------------------------------

def test_the_writing_counsellor_and_the_coordinator_read_notes(session):
    assert can_read_notes(COUNSELLOR_ROLE, "PC-0042", session)
    assert can_read_notes(COORDINATOR_ROLE, "staff-7", session)


@pytest.mark.parametrize("role, actor", [
    (COUNSELLOR_ROLE, "PC-0043"),        # another counsellor
    (COUNSELLOR_ROLE, None),
    ("mediator", "PC-0042"),             # a mediator who happens to share the id
    ("county_admin", "admin-1"),
    ("operator", None),
    ("citizen", "371324-20250604-000007"),
])
def test_nobody_else_reads_notes(session, role, actor):
    assert not can_read_notes(role, actor, session)
    assert "notes" not in view_for(role, actor, session)


def test_views_include_notes_only_for_permitted_readers(session):
    assert view_for(COUNSELLOR_ROLE, "PC-0042", session)["notes"] == NOTES
    public = public_view(session)
    assert "notes" not in public and NOTES not in str(public)
    assert public["kind"] == "crisis" and public["at"].endswith("+08:00")


# --- sessions and follow-ups ------------------------------------------------------------

def test_default_follow_up_depends_on_the_kind(now):
    assert new_session("c", "p", now, "crisis", NOTES).next_follow_up == now + timedelta(hours=24)
    assert new_session("c", "p", now, "first", NOTES).next_follow_up == now + timedelta(days=7)
    explicit = now + timedelta(days=3)
    assert new_session("c", "p", now, "first", NOTES, next_follow_up=explicit).next_follow_up == explicit
    with pytest.raises(ValueError):
        new_session("c", "p", now, "chat", NOTES)


def test_a_valid_first_session_passes(now):
    first = new_session("c", "PC-1", now, "first", NOTES)
    assert check_session(first, assigned_counsellor_id="PC-1", earlier=[], now=now) == {}


def test_session_checks(now):
    first = new_session("c", "PC-1", now, "first", NOTES)
    assert "counsellor_id" in check_session(first, assigned_counsellor_id="PC-2", earlier=[], now=now)
    assert "case_no" in check_session(first, assigned_counsellor_id=None, earlier=[], now=now)
    assert "kind" in check_session(first, assigned_counsellor_id="PC-1", earlier=[first], now=now)
    follow_up = new_session("c", "PC-1", now, "follow_up", NOTES)
    assert "kind" in check_session(follow_up, assigned_counsellor_id="PC-1", earlier=[], now=now)
    future = new_session("c", "PC-1", now + timedelta(hours=1), "first", NOTES)
    assert "at" in check_session(future, assigned_counsellor_id="PC-1", earlier=[], now=now)
    backwards = new_session("c", "PC-1", now, "first", NOTES, next_follow_up=now - timedelta(days=1))
    assert "next_follow_up" in check_session(backwards, assigned_counsellor_id="PC-1", earlier=[], now=now)
    closed = check_session(first, assigned_counsellor_id="PC-1", earlier=[], now=now, outcome="stabilised")
    assert "case_no" in closed
    blank = new_session("c", "PC-1", now, "first", "  ")
    assert "notes" in check_session(blank, assigned_counsellor_id="PC-1", earlier=[], now=now)


def test_follow_up_falls_due_and_stops_with_an_outcome(now):
    clock = ManualClock(now)
    first = new_session("c", "PC-1", clock.now(), "first", NOTES)
    clock.advance(timedelta(days=2))
    crisis = new_session("c", "PC-1", clock.now(), "crisis", NOTES)
    sessions = [crisis, first]
    assert follow_up_due(sessions) == crisis.at + timedelta(hours=24)
    clock.advance(timedelta(hours=24))
    assert not follow_up_overdue(sessions, clock.now())
    clock.advance(timedelta(minutes=1))
    assert follow_up_overdue(sessions, clock.now())
    assert not follow_up_overdue(sessions, clock.now(), outcome="stabilised")


def test_outcomes(now):
    assert check_outcome("declined_by_party", []) == []
    assert check_outcome("stabilised", []) != []
    assert check_outcome("stabilised", [new_session("c", "PC-1", now, "first", NOTES)]) == []
    assert check_outcome("referred_to_hospital", []) == []
    assert check_outcome("happy", []) != []
