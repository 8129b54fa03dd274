from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from services.notify.policy import QuietHours, decide, is_opted_out, release_at

from .conftest import SHANGHAI


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize("now, released", [
    (at(1, 22, 40), at(2, 8)),     # evening: held until the next morning
    (at(2, 3, 5), at(2, 8)),       # small hours: held until this morning
    (at(1, 21, 0), at(2, 8)),      # the window starts at 21:00 sharp
    (at(2, 7, 59), at(2, 8)),
])
def test_a_night_sms_is_held_until_eight(now, released):
    assert release_at(now, urgent=False, channel="sms") == released


@pytest.mark.parametrize("now", [at(2, 8, 0), at(2, 12, 30), at(1, 20, 59)])
def test_a_daytime_sms_goes_now(now):
    assert release_at(now, urgent=False, channel="sms") == now


def test_urgent_alerts_and_other_channels_bypass_quiet_hours():
    night = at(1, 23, 30)
    assert release_at(night, urgent=True, channel="sms") == night
    assert release_at(night, urgent=False, channel="inbox") == night
    assert release_at(night, urgent=False, channel="email") == night


def test_quiet_hours_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("NOTIFY_QUIET_HOURS", "22:30-07:00")
    monkeypatch.setenv("NOTIFY_QUIET_CHANNELS", "sms,app_push")
    assert release_at(at(1, 22, 0), urgent=False, channel="sms") == at(1, 22, 0)
    assert release_at(at(1, 23, 0), urgent=False, channel="app_push") == at(2, 7)
    monkeypatch.setenv("NOTIFY_QUIET_HOURS", "00:00-00:00")
    assert release_at(at(1, 23, 0), urgent=False, channel="sms") == at(1, 23, 0)


def test_a_window_within_one_day():
    lunch = QuietHours(start=time(12, 0), end=time(14, 0))
    assert lunch.release_at(at(2, 12, 30), urgent=False, channel="sms") == at(2, 14)
    assert lunch.release_at(at(2, 23, 0), urgent=False, channel="sms") == at(2, 23)


def test_times_in_utc_are_judged_in_lanling_time():
    utc_evening = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc)   # 22:00 in Lanling
    released = release_at(utc_evening, urgent=False, channel="sms")
    assert released == at(2, 8) and released.tzinfo == timezone.utc


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        release_at(datetime(2026, 12, 1, 22, 0), urgent=False, channel="sms")


def test_opt_out_by_channel_or_entirely():
    opt_outs = {("citizen-abc", "sms"), ("M-0107", "*")}
    assert is_opted_out("citizen-abc", "sms", opt_outs)
    assert not is_opted_out("citizen-abc", "app_push", opt_outs)
    assert is_opted_out("M-0107", "email", opt_outs)
    assert not is_opted_out("M-0112", "sms", opt_outs)


def test_opted_out_people_are_skipped_unless_the_notice_is_legally_required():
    opt_outs = {("citizen-abc", "sms")}
    now = at(2, 10)
    skipped = decide(recipient_id="citizen-abc", channel="sms", urgent=False, legally_required=False,
                     now=now, opt_outs=opt_outs)
    assert (skipped.send, skipped.release_at, skipped.reason) == (False, None, "opted_out")
    required = decide(recipient_id="citizen-abc", channel="sms", urgent=False, legally_required=True,
                      now=now, opt_outs=opt_outs)
    assert (required.send, required.release_at, required.reason) == (True, now, None)


def test_decide_holds_night_messages_and_says_why():
    night = at(1, 23)
    held = decide(recipient_id="x", channel="sms", urgent=False, legally_required=True, now=night)
    assert (held.send, held.release_at, held.reason) == (True, at(2, 8), "quiet_hours")
    urgent = decide(recipient_id="x", channel="sms", urgent=True, legally_required=False, now=night)
    assert (urgent.release_at, urgent.reason) == (night, None)
